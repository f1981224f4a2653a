import { backoffDelay, sleep, type BackoffOptions, type Logger } from '@walpurge/core';
import type { LaneBatch } from './lane-batch.js';
import type { CdnLaneMetrics } from './lane-metrics.js';
import type { LaneLock, PostgresCdnQueue } from './postgres-cdn-queue.js';

export interface PostgresCdnLaneOptions {
  provider: string;
  queue: PostgresCdnQueue;
  batch: LaneBatch;
  metrics: CdnLaneMetrics;
  logger: Logger;
  backoff: BackoffOptions;
  coalesceWindowMs: number;
  maxEntriesPerBatch: number;
}

/** How often the gauges are refreshed from the table, also while the lane is blocked on its CDN. */
const STATS_INTERVAL_MS = 1_000;
/** How often a lane without the provider's lock tries to take it over. */
const LOCK_RETRY_MS = 2_000;

/**
 * One provider's lane over the inline queue table: take its oldest rows once the oldest has waited
 * the coalescing window, purge them as one coalesced call, delete them by id. A crash between the
 * purge and the delete purges them again after the restart (purges are idempotent); nothing is
 * deleted before it was purged or dead-lettered.
 */
export class PostgresCdnLane {
  private readonly abort = new AbortController();
  private readonly idle = new AbortController();
  private stopping = false;
  private loop: Promise<void> | undefined;
  private statsTimer: NodeJS.Timeout | undefined;
  private lock: LaneLock | undefined;
  private refreshing = false;

  constructor(private readonly options: PostgresCdnLaneOptions) {}

  start(): void {
    this.loop = this.run();
    this.statsTimer = setInterval(() => void this.refreshStats(), STATS_INTERVAL_MS);
    this.statsTimer.unref();
  }

  /** Stops taking rows; the call in flight may finish within `timeoutMs`, else it is abandoned (its rows stay). */
  async stop(timeoutMs: number): Promise<void> {
    this.stopping = true;
    this.idle.abort();
    clearInterval(this.statsTimer);
    const deadline = setTimeout(() => this.abort.abort(), timeoutMs);
    try {
      await this.loop;
    } finally {
      clearTimeout(deadline);
      this.abort.abort();
      await this.lock?.release();
    }
  }

  /** Whether this process runs the provider's lane now (only one process at a time does). */
  private async holdsLock(): Promise<boolean> {
    if (this.lock?.held()) return true;
    await this.lock?.release();
    this.lock = await this.options.queue.tryLaneLock(this.options.provider);
    if (this.lock)
      this.options.logger.info(
        { target: this.options.provider },
        'this process runs the CDN lane of the provider',
      );
    return this.lock !== undefined;
  }

  private async run(): Promise<void> {
    const { provider, queue, logger, coalesceWindowMs, maxEntriesPerBatch } = this.options;
    const signal = this.abort.signal;
    const pollMs = Math.max(50, Math.min(coalesceWindowMs, 1_000));
    let failures = 0;
    while (!this.stopping) {
      try {
        if (!(await this.holdsLock())) {
          await this.pause(LOCK_RETRY_MS);
          continue;
        }
        let { entries, undecodable } = await queue.oldest(provider, maxEntriesPerBatch, signal);
        const first = entries[0];
        if (first && entries.length < maxEntriesPerBatch) {
          // Let the window fill: a hot row changed many times in it costs one call.
          const wait = Math.min(coalesceWindowMs, first.enqueuedAt + coalesceWindowMs - Date.now());
          if (wait > 0) {
            await this.pause(wait);
            if (this.stopping) break;
            ({ entries, undecodable } = await queue.oldest(provider, maxEntriesPerBatch, signal));
          }
        }
        for (const row of undecodable) {
          this.options.metrics.entries.inc({ provider, outcome: 'undecodable' });
          logger.error(
            { target: provider, id: row.id, row: row.text, err: row.error },
            'a CDN queue row is not a change event: deleted without purging',
          );
        }
        await queue.remove(
          undecodable.map((row) => row.id),
          signal,
        );
        if (entries.length === 0) {
          if (undecodable.length === 0) await this.pause(pollMs);
          continue;
        }
        await this.options.batch.run(entries, signal);
        await queue.remove(
          entries.map((entry) => entry.id),
          signal,
        );
        failures = 0;
      } catch (error) {
        if (signal.aborted) break;
        // The queue itself failed for good (table gone, privileges): every purge waits; the lag
        // gauge and its alert show it, and each attempt logs why.
        const delayMs = backoffDelay(failures, this.options.backoff);
        failures += 1;
        logger.error(
          { target: provider, err: error, delayMs },
          'the CDN lane cannot read or update its queue',
        );
        await this.pause(delayMs);
      }
    }
  }

  private async pause(ms: number): Promise<void> {
    await sleep(ms, this.idle.signal).catch(() => undefined);
  }

  private async refreshStats(): Promise<void> {
    // Ticks never overlap: on a slow database they would pile up and take every lane connection.
    if (this.refreshing) return;
    this.refreshing = true;
    const { provider, queue, metrics } = this.options;
    try {
      const { depth, oldestMs } = await queue.stats(provider);
      metrics.depth.set({ provider }, depth);
      metrics.oldestAge.set({ provider }, oldestMs === null ? 0 : Math.max(0, Date.now() - oldestMs) / 1000);
    } catch {
      // Kept as last seen; the lane's own loop logs database failures.
    } finally {
      this.refreshing = false;
    }
  }
}
