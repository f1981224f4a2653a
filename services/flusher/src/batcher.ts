import type { PendingWrite } from '@walpurge/write-behind';
import { ErrorCode, WalpurgeError, backoffDelay, sleep, sqlState, type Logger } from '@walpurge/core';
import type { BatchResult, RowOutcome } from './batch-writer.js';
import { describeSqlError, isServerWideError, writeErrorKind } from './sql-errors.js';

export interface BatcherOptions {
  size: number;
  delayMs: number;
  retryInitialMs: number;
  retryMaxMs: number;
  /**
   * Attempts of one batch that fail with a transient (not an unavailable-database) error before the
   * batch is halved; a single row still failing after this many attempts fails with its reason,
   * unless the error is the server's (see settleCapped): then it is retried without limit.
   */
  maxRetries: number;
  write(entries: PendingWrite[]): Promise<BatchResult>;
  logger: Logger;
  onBatch?(result: BatchResult, seconds: number): void;
  onTransientError?(error: unknown, attempt: number, delayMs: number): void;
}

interface Slot {
  entry: PendingWrite;
  waiters: Array<{ resolve(outcome: RowOutcome): void; reject(error: unknown): void }>;
}

/**
 * Collects rows from concurrently running flush jobs into batches (up to `size` rows, or whatever
 * arrived `delayMs` after the first one) and writes one batch at a time. Two jobs for the same row
 * in one batch share one write of the newer version. While the database is unreachable the batch is
 * retried with backoff and no new batch starts, so jobs simply stay active: backpressure, no loss.
 * Any other retried error is capped (maxRetries): the batch is then halved, so a row that fails on
 * every attempt ends up alone and fails with its reason while the rest of its batch is written,
 * unless the error turns out to be the server's (see settleCapped): then nothing fails, it waits.
 */
export class Batcher {
  private slots = new Map<string, Slot>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private draining = false;
  private readonly abort = new AbortController();
  /** Consecutive failed attempts of the batch in flight (0 = healthy). */
  failingAttempts = 0;
  /**
   * Since when (epoch ms) the batch in flight has been retried without limit because the database
   * is unreachable or refuses every write for a server-wide reason: nothing fails, so only this shows
   * that rows are waiting (walpurge_flusher_batch_held_seconds and its alert).
   */
  private heldSinceMs: number | undefined;

  /** Seconds the batch in flight has been held back by an unavailable database or a server-wide error. */
  heldSeconds(nowMs = Date.now()): number {
    return this.heldSinceMs === undefined ? 0 : Math.max(0, nowMs - this.heldSinceMs) / 1000;
  }

  constructor(private readonly options: BatcherOptions) {}

  /** Resolves with the row's outcome once its batch committed (or it failed for good). */
  submit(entry: PendingWrite): Promise<RowOutcome> {
    if (this.abort.signal.aborted)
      return Promise.reject(new WalpurgeError(ErrorCode.Aborted, 'flusher is stopping'));
    return new Promise<RowOutcome>((resolve, reject) => {
      const slot = this.slots.get(entry.rowId);
      if (slot) {
        if (BigInt(entry.version) > BigInt(slot.entry.version)) slot.entry = entry;
        slot.waiters.push({ resolve, reject });
      } else {
        this.slots.set(entry.rowId, { entry, waiters: [{ resolve, reject }] });
      }
      this.schedule();
    });
  }

  /** Shutdown: write what is collected without waiting for the delay. */
  drain(): void {
    this.draining = true;
    this.schedule();
  }

  /** Shutdown while the database is down: give up the retries; waiting jobs get an Aborted error. */
  giveUp(): void {
    this.abort.abort();
    const error = new WalpurgeError(ErrorCode.Aborted, 'flusher is stopping');
    for (const slot of this.slots.values()) for (const waiter of slot.waiters) waiter.reject(error);
    this.slots.clear();
  }

  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private schedule(): void {
    if (this.running || this.slots.size === 0) return;
    if (this.slots.size >= this.options.size || this.draining) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = undefined;
      this.start();
    } else {
      this.timer ??= setTimeout(() => {
        this.timer = undefined;
        this.start();
      }, this.options.delayMs);
    }
  }

  private start(): void {
    if (this.running || this.slots.size === 0) return;
    const taken = [...this.slots.values()].slice(0, this.options.size);
    for (const slot of taken) this.slots.delete(slot.entry.rowId);
    this.running = this.writeWithRetry(taken).finally(() => {
      this.running = undefined;
      this.schedule();
    });
  }

  /**
   * Writes the batch, retrying; a transient error past the cap means the batch is split (see
   * settleCapped). `serverWide`: the cause was found to be the server (see isServerWideError), so
   * that error is retried without limit, like an unavailable database.
   */
  private async writeWithRetry(slots: Slot[], serverWide = false): Promise<void> {
    const capped = await this.attempt(slots, serverWide);
    if (capped !== undefined) await this.settleCapped(slots, capped);
  }

  /**
   * The batch failed maxRetries times with a transient error. A row may be the cause (a trigger
   * raising 40001 for it every time), or the server (a migration's table lock past lock_timeout,
   * disk full, out of memory, statement_timeout on a busy server), which must never fail rows.
   * Halve the batch: a half that goes through is done; if both halves fail with the same server-wide
   * SQLSTATE, or a single row is left failing with one, the server is the cause: the rows are
   * retried with backoff for as long as it takes. Only row-specific errors (40001, 40P01, unknown
   * errors) fail a row that is left alone — and so does a server-wide SQLSTATE once other rows of
   * the batch went through (`othersWritten`): the server works, this row is the cause (its trigger
   * always exceeds statement_timeout, a transaction holds its lock past lock_timeout), and waiting
   * on it would stop every later write-behind.
   */
  private async settleCapped(slots: Slot[], error: unknown, othersWritten = false): Promise<void> {
    if (slots.length === 1) {
      if (isServerWideError(error) && !othersWritten) return this.writeWithRetry(slots, true);
      const reason = `still failing after ${this.options.maxRetries} attempts: ${describeSqlError(error)}`;
      for (const waiter of slots[0]!.waiters) waiter.resolve({ ok: false, reason });
      return;
    }
    const half = Math.ceil(slots.length / 2);
    const halves = [slots.slice(0, half), slots.slice(half)] as const;
    const first = await this.attempt(halves[0], false);
    const second = await this.attempt(halves[1], false);
    if (
      first !== undefined &&
      second !== undefined &&
      isServerWideError(first) &&
      sqlState(first) === sqlState(second)
    ) {
      return this.writeWithRetry(slots, true);
    }
    if (first !== undefined) await this.settleCapped(halves[0], first, othersWritten || second === undefined);
    if (second !== undefined)
      await this.settleCapped(halves[1], second, othersWritten || first === undefined);
  }

  /**
   * Attempts the batch until it is written (or refused for good, or the flusher stops): the rows are
   * then settled and undefined is returned. Returns the error when transient errors reached the cap
   * (rows not settled). An unavailable database, and when `serverWide` a server-wide error, are
   * retried without limit.
   */
  private async attempt(slots: Slot[], serverWide: boolean): Promise<unknown> {
    const entries = slots.map((slot) => slot.entry);
    let capped = 0;
    for (let attempt = 0; ; attempt += 1) {
      const began = process.hrtime.bigint();
      try {
        const result = await this.options.write(entries);
        this.failingAttempts = 0;
        this.heldSinceMs = undefined;
        this.options.onBatch?.(result, Number(process.hrtime.bigint() - began) / 1e9);
        for (const slot of slots) {
          const outcome = result.outcomes.get(slot.entry.rowId) ?? {
            ok: false,
            reason: 'row missing from batch result',
          };
          for (const waiter of slot.waiters) waiter.resolve(outcome);
        }
        return undefined;
      } catch (error) {
        const kind = writeErrorKind(error);
        if (kind === 'permanent') {
          this.heldSinceMs = undefined;
          // Not row-specific (e.g. schema lookup failed for good): fail the rows, do not spin.
          for (const slot of slots)
            for (const waiter of slot.waiters) waiter.resolve({ ok: false, reason: describeSqlError(error) });
          return undefined;
        }
        const unlimited = kind === 'unavailable' || (serverWide && isServerWideError(error));
        if (kind === 'transient' && !unlimited) capped += 1;
        if (capped >= this.options.maxRetries) {
          this.failingAttempts = 0;
          this.heldSinceMs = undefined;
          return error ?? new Error('unknown error');
        }
        if (unlimited) this.heldSinceMs ??= Date.now();
        this.failingAttempts = attempt + 1;
        const delayMs = backoffDelay(attempt, {
          initialMs: this.options.retryInitialMs,
          maxMs: this.options.retryMaxMs,
        });
        this.options.onTransientError?.(error, attempt + 1, delayMs);
        try {
          if (this.abort.signal.aborted) throw new WalpurgeError(ErrorCode.Aborted, 'flusher is stopping');
          await sleep(delayMs, this.abort.signal);
        } catch (aborted) {
          this.heldSinceMs = undefined;
          for (const slot of slots) for (const waiter of slot.waiters) waiter.reject(aborted);
          return undefined;
        }
      }
    }
  }
}
