import type { Redis } from 'ioredis';
import { ErrorCode, WalpurgeError } from '@walpurge/core';
import { classifyRedisError } from './redis-errors.js';
import { combinedMatcher, type CombinedMatcher } from './combined-matcher.js';

export interface PatternSweeperOptions {
  /** COUNT hint of each SCAN step. */
  scanCount: number;
  /** Shortest pause between the end of one sweep and the start of the next. */
  minWindowMs: number;
  /** The pause is this many times the last sweep's duration (bounded by min and max window). */
  windowFactor: number;
  /** Longest pause between sweeps, however slow the last one was. */
  maxWindowMs: number;
}

/** What the sweeper records; absent in tools and tests that do not look. */
export interface SweepObserver {
  sweepDone(outcome: 'success' | 'failure', seconds: number, patterns: number): void;
  /** Keys in a master's keyspace as its sweep starts (DBSIZE): what SCAN walks, matching or not. */
  keysScanned(count: number): void;
  keysUnlinked(count: number): void;
}

interface Waiter {
  patterns: readonly string[];
  signal: AbortSignal;
  resolve(): void;
  reject(error: unknown): void;
}

/**
 * Pattern purges without one keyspace SCAN per batch. A batch registers its patterns and waits for
 * a full sweep that STARTED after its registration: SCAN only guarantees to return keys present
 * for the whole scan, so a sweep already running when a pattern arrives may have passed the
 * pattern's keys already and does not count. One sweep serves every pattern pending when it
 * starts: it SCANs every node (cluster masters in parallel) once, tests each key against one
 * matcher compiled from all of them and unlinks the matches.
 *
 * Sweeps are spaced by a window that follows the measured sweep time (factor × last duration,
 * within [min, max]): the more expensive the keyspace walk, the more patterns each one serves,
 * and Redis spends a bounded share of its time scanning for us. A failed sweep rejects every
 * waiter with its error (retriable connection errors make the batches retry).
 */
export class PatternSweeper {
  private pending: Waiter[] = [];
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private lastEnd = 0;
  private lastDurationMs = 0;
  private closed = false;
  private readonly stop = new AbortController();

  constructor(
    /** The nodes holding keys: the server itself, or every master of a cluster. */
    private readonly nodes: (signal: AbortSignal) => Promise<Redis[]>,
    /** Deletes matched keys (batched, grouped by slot on a cluster). */
    private readonly unlink: (keys: readonly string[]) => Promise<void>,
    private readonly batchSize: number,
    private readonly options: PatternSweeperOptions,
    private readonly observer?: SweepObserver,
  ) {}

  /**
   * Resolves once every key present at this call and matching one of `patterns` (complete globs,
   * key prefix included) is unlinked. Rejects with the sweep's error, or the signal's reason.
   */
  sweep(patterns: readonly string[], signal: AbortSignal): Promise<void> {
    if (patterns.length === 0) return Promise.resolve();
    if (signal.aborted) return Promise.reject(signal.reason as unknown);
    if (this.closed) return Promise.reject(closedError());
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        // Still waiting for its sweep: it leaves the queue; a running sweep notices when no waiter is left.
        this.pending = this.pending.filter((waiter) => waiter !== entry);
        reject(signal.reason as unknown);
      };
      const entry: Waiter = {
        patterns,
        signal,
        resolve: () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        },
        reject: (error) => {
          signal.removeEventListener('abort', onAbort);
          reject(error);
        },
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.pending.push(entry);
      this.schedule();
    });
  }

  /** The pause the next sweep waits after the last one ended. */
  windowMs(): number {
    const { minWindowMs, windowFactor, maxWindowMs } = this.options;
    return Math.min(maxWindowMs, Math.max(minWindowMs, windowFactor * this.lastDurationMs));
  }

  /** Graceful stop: waiters are rejected (retriably: their batches are replayed), a running sweep ends. */
  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.stop.abort(closedError());
    for (const waiter of this.pending.splice(0)) waiter.reject(closedError());
  }

  private schedule(): void {
    if (this.running || this.timer !== undefined || this.pending.length === 0 || this.closed) return;
    // Even without a pause, the timer lets batches registering in the same tick share the sweep.
    const delay = Math.max(0, this.lastEnd + this.windowMs() - Date.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = true;
      void this.run().finally(() => {
        this.running = false;
        this.schedule();
      });
    }, delay);
  }

  /** One sweep for the waiters registered so far; settles each of them, never rejects. */
  private async run(): Promise<void> {
    const waiters = this.pending.splice(0);
    if (waiters.length === 0) return;
    const started = performance.now();
    const patterns = new Set(waiters.flatMap((waiter) => waiter.patterns));
    // Nobody waits any more (their purges were abandoned): stop walking the keyspace for them.
    const abandoned = (): boolean => waiters.every((waiter) => waiter.signal.aborted);
    let outcome: 'success' | 'failure' = 'success';
    try {
      const matcher = combinedMatcher([...patterns]);
      const nodes = await this.nodes(this.stop.signal);
      await Promise.all(nodes.map((node) => this.sweepNode(node, matcher, abandoned)));
      for (const waiter of waiters) waiter.resolve();
    } catch (error) {
      outcome = 'failure';
      const classified = classifyRedisError(error);
      for (const waiter of waiters) waiter.reject(classified);
    } finally {
      this.lastDurationMs = performance.now() - started;
      this.lastEnd = Date.now();
      this.observer?.sweepDone(outcome, this.lastDurationMs / 1000, patterns.size);
    }
  }

  private async sweepNode(node: Redis, matcher: CombinedMatcher, abandoned: () => boolean): Promise<void> {
    let cursor = '0';
    let matches: string[] = [];
    // The cost of a sweep is the keys SCAN walks, which the server-side MATCH hides (it returns only
    // the keys under the patterns' common prefix): DBSIZE, O(1), says how many there are.
    if (this.observer) this.observer.keysScanned(await node.dbsize());
    do {
      this.stop.signal.throwIfAborted();
      if (abandoned())
        throw new WalpurgeError(ErrorCode.Internal, 'pattern sweep abandoned: no batch waits for it');
      const [next, keys] = await node.scan(cursor, 'MATCH', matcher.match, 'COUNT', this.options.scanCount);
      cursor = next;
      for (const key of keys) if (matcher.test(key)) matches.push(key);
      if (matches.length >= this.batchSize) {
        await this.unlinkCounted(matches);
        matches = [];
      }
    } while (cursor !== '0');
    await this.unlinkCounted(matches);
  }

  private async unlinkCounted(keys: readonly string[]): Promise<void> {
    if (keys.length === 0) return;
    await this.unlink(keys);
    this.observer?.keysUnlinked(keys.length);
  }
}

function closedError(): WalpurgeError {
  return new WalpurgeError(
    ErrorCode.RedisUnavailable,
    'the Redis target is stopping: pattern purge not done',
    {
      retriable: true,
    },
  );
}
