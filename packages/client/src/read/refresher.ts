import { errorMessage, LogThrottle, TokenBucket, type Logger } from '@walpurge/core';
import { outcomeLabel, type LeasedLoad } from './leased-load.js';
import type { ClientMetrics } from './metrics.js';
import type { GetOptions } from './options.js';

export interface RefreshOptions {
  /** Most background re-loads running at once in this process. Default 4. */
  concurrency?: number;
  /** Most background re-loads started per second in this process (token bucket, burst = concurrency). Default 50. */
  ratePerSecond?: number;
  /** A key not read for this long is no longer refreshed (it is forgotten at its next purge), ms. Default 300,000. */
  idleTimeoutMs?: number;
  /** Most keys remembered for refreshing; the least recently read one is forgotten first. Default 10,000. */
  maxKeys?: number;
  /** How long after an invalidation message reads of the key count in `walpurge_client_post_purge_reads_total`, ms. Default 10,000. */
  postPurgeWindowMs?: number;
}

export type RefreshSettings = Required<Omit<RefreshOptions, 'postPurgeWindowMs'>>;

interface HotKey {
  loader: () => Promise<unknown>;
  opts: GetOptions;
  lastReadAt: number;
}

/**
 * Refresh-on-invalidate: keys read with `refresh: 'on-invalidate'` are remembered with their loader;
 * when an invalidation message for one arrives, it is re-loaded in the background through the lease
 * path (`load`), so the fleet's next reader finds it cached.
 *
 * Invalidation messages come for every change of the key, including the lease and the fill this
 * process makes itself; a refresh then finds the value present and loads nothing (one Redis round
 * trip, counted as skipped_present). Only one process in the fleet wins the lease after a purge; the
 * others find it taken and skip. A key whose refresh failed is forgotten until it is read again.
 */
export class HotKeyRefresher {
  /** Insertion order is read order: the first key is the least recently read. */
  private readonly hot = new Map<string, HotKey>();
  /** Keys waiting for a refresh, in arrival order. */
  private readonly queued = new Set<string>();
  private readonly running = new Map<string, Promise<void>>();
  /** Keys invalidated again while their refresh was running: looked at once more when it ends. */
  private readonly again = new Set<string>();
  private readonly rate: TokenBucket;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly failureLog: LogThrottle;

  constructor(
    private readonly settings: RefreshSettings,
    private readonly load: LeasedLoad,
    private readonly metrics: ClientMetrics,
    private readonly logger: Logger,
    private readonly now: () => number,
  ) {
    this.rate = new TokenBucket(settings.ratePerSecond, settings.concurrency, { now });
    this.failureLog = new LogThrottle(10_000, now);
  }

  /** A read with `refresh: 'on-invalidate'`: remember (or update) the key's loader and options. */
  mark(key: string, loader: () => Promise<unknown>, opts: GetOptions): void {
    if (this.closed) return;
    this.hot.delete(key);
    this.hot.set(key, { loader, opts, lastReadAt: this.now() });
    if (this.hot.size <= this.settings.maxKeys) return;
    const oldest = this.hot.keys().next().value;
    if (oldest === undefined) return;
    this.hot.delete(oldest);
    this.metrics.refreshKeysDropped.inc({ reason: 'capacity' });
  }

  isHot(key: string): boolean {
    return this.hot.has(key);
  }

  /** Redis says the key changed (or was purged, or expired). */
  invalidated(key: string): void {
    if (this.closed) return;
    const entry = this.hot.get(key);
    if (!entry) return;
    if (this.now() - entry.lastReadAt > this.settings.idleTimeoutMs) {
      this.hot.delete(key);
      this.metrics.refreshKeysDropped.inc({ reason: 'idle' });
      this.logger.debug({ key }, 'refresh-on-invalidate: key idle, no longer refreshed');
      return;
    }
    if (this.running.has(key)) {
      this.again.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    this.queued.add(key);
    // Synchronously, so this process's lookup is queued on the connection before its own readers'.
    this.pump();
  }

  /** Starts what the concurrency and rate budgets allow; waits for a token otherwise. */
  private pump(): void {
    while (!this.closed && this.queued.size > 0 && this.running.size < this.settings.concurrency) {
      const waitMs = this.rate.reserve(1);
      if (waitMs > 0) {
        this.rate.refund(1); // taken again once it is there
        this.wakeIn(waitMs);
        return;
      }
      const key = this.queued.values().next().value as string;
      this.queued.delete(key);
      const entry = this.hot.get(key);
      if (!entry) {
        this.rate.refund(1);
        continue;
      }
      this.start(key, entry);
    }
  }

  private wakeIn(ms: number): void {
    if (this.timer) return;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.pump();
      },
      Math.max(1, Math.ceil(ms)),
    );
    this.timer.unref();
  }

  private start(key: string, entry: HotKey): void {
    const run = this.load(key, entry.loader, entry.opts)
      .then((outcome) => {
        this.metrics.refreshes.inc({ outcome: outcomeLabel(outcome, 'done') });
      })
      .catch((error: unknown) => {
        // Forgotten until read again: giving the lease back is itself a change Redis tells us of,
        // and refreshing on it would retry a failing loader at the full refresh rate.
        if (this.hot.get(key) === entry) this.hot.delete(key);
        this.again.delete(key);
        this.failed(key, error);
      })
      .finally(() => {
        this.running.delete(key);
        if (this.again.delete(key)) this.invalidated(key);
        this.pump();
      });
    this.running.set(key, run);
  }

  /** Never thrown into the application: counted, and logged at most every 10 s. */
  private failed(key: string, error: unknown): void {
    this.metrics.refreshes.inc({ outcome: 'failed' });
    const failures = this.failureLog.take();
    if (failures === 0) return;
    this.logger.warn({ key, err: error, failures }, `refresh-on-invalidate failed: ${errorMessage(error)}`);
  }

  /** No refresh starts after this; the ones running are awaited (their fills still obey the lease). */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.queued.clear();
    this.again.clear();
    this.hot.clear();
    await Promise.allSettled([...this.running.values()]);
  }
}
