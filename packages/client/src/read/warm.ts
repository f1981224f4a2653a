import { errorMessage } from '@walpurge/core';
import { outcomeLabel, type LeasedLoad, type LeasedLoadOutcome } from './leased-load.js';
import type { ClientMetrics } from './metrics.js';
import type { CacheRedis } from './cache-redis.js';
import type { GetOptions } from './options.js';

/**
 * One key to pre-load: the same loader and options as the get() that will read it. With
 * `refresh: 'on-invalidate'` the key is also remembered for refreshing, as by such a get().
 */
export interface WarmEntry<T = unknown> extends GetOptions<T> {
  key: string;
  loader: () => Promise<T>;
}

export interface WarmProgress {
  total: number;
  /** Loaded and stored. */
  loaded: number;
  /** Already cached, being loaded by another caller, or purged/written while loading (the newer state won). */
  skipped: number;
  failed: number;
  /** loaded + skipped + failed. */
  completed: number;
  /** Entries completed per second since warm() started. */
  ratePerSecond: number;
  elapsedMs: number;
}

export interface WarmOptions {
  /** Entries loaded at once. Default 8. */
  concurrency?: number;
  /**
   * How long to wait for the Redis connection to be ready before starting, ms (warm() usually runs
   * right after createCacheClient(), while a connection from a URL is still connecting). Default 10,000.
   */
  readyTimeoutMs?: number;
  /** Called after every entry; must not throw (what it throws is ignored). */
  onProgress?: (progress: WarmProgress) => void;
}

export interface WarmFailure {
  key: string;
  error: unknown;
}

export interface WarmReport extends WarmProgress {
  /** Skipped entries by reason. */
  skippedBy: { present: number; leasedElsewhere: number; rejected: number };
  /** Every entry whose loader or Redis round trip failed; warm() itself does not throw for them. */
  failures: WarmFailure[];
}

export interface WarmDeps {
  load: LeasedLoad;
  metrics: ClientMetrics;
  now: () => number;
  /** True once the client is closing: entries not started yet fail with `closedError()`. */
  isClosed: () => boolean;
  closedError: () => Error;
  /** Registers work so the client's close() awaits it. */
  track: (work: Promise<unknown>) => void;
}

/**
 * Pre-loads `entries` through the lease path: a key already cached is left alone, and a fill that
 * raced a purge or a write is refused by the fill script (the lease it was granted is gone), so warm
 * never overwrites a newer value.
 */
export async function warmEntries(
  entries: readonly WarmEntry[],
  options: WarmOptions,
  deps: WarmDeps,
): Promise<WarmReport> {
  const concurrency = options.concurrency ?? 8;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new RangeError(`warm(): concurrency must be a positive integer, got ${String(concurrency)}`);
  }
  const startedAt = deps.now();
  const report: WarmReport = {
    total: entries.length,
    loaded: 0,
    skipped: 0,
    failed: 0,
    completed: 0,
    ratePerSecond: 0,
    elapsedMs: 0,
    skippedBy: { present: 0, leasedElsewhere: 0, rejected: 0 },
    failures: [],
  };

  function progress(): void {
    report.completed = report.loaded + report.skipped + report.failed;
    report.elapsedMs = Math.max(0, deps.now() - startedAt);
    report.ratePerSecond = report.elapsedMs > 0 ? (report.completed * 1000) / report.elapsedMs : 0;
    if (!options.onProgress) return;
    const { skippedBy: _skippedBy, failures: _failures, ...snapshot } = report;
    try {
      options.onProgress(snapshot);
    } catch {
      // A broken progress display must not abort the warm-up.
    }
  }

  function record(outcome: LeasedLoadOutcome): void {
    deps.metrics.warmEntries.inc({ outcome: outcomeLabel(outcome, 'loaded') });
    if (outcome === 'filled') report.loaded += 1;
    else {
      report.skipped += 1;
      if (outcome === 'present') report.skippedBy.present += 1;
      else if (outcome === 'leased_elsewhere') report.skippedBy.leasedElsewhere += 1;
      else report.skippedBy.rejected += 1;
    }
  }

  function fail(key: string, error: unknown): void {
    deps.metrics.warmEntries.inc({ outcome: 'failed' });
    report.failed += 1;
    report.failures.push({ key, error });
  }

  let next = 0;
  async function worker(): Promise<void> {
    for (let i = next++; i < entries.length; i = next++) {
      const entry = entries[i] as WarmEntry;
      if (deps.isClosed()) {
        fail(entry.key, deps.closedError());
      } else {
        const { key, loader, ...opts } = entry;
        const work = deps.load(key, loader, opts);
        deps.track(work);
        try {
          record(await work);
        } catch (error) {
          fail(key, error);
        }
      }
      progress();
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, entries.length) }, worker));
  progress();
  return report;
}

/** One line describing a failure, for logs and the progress bar's summary. */
export function describeWarmFailure(failure: WarmFailure): string {
  return `${failure.key}: ${errorMessage(failure.error)}`;
}

/**
 * Resolves once `redis` is ready, or after `timeoutMs` (the entries then fail one by one, saying
 * why). Reads fail open instead of waiting; a warm-up has no reader to serve, so it waits.
 */
export async function untilReady(redis: CacheRedis, timeoutMs: number, closing: AbortSignal): Promise<void> {
  if (redis.status === 'ready' || redis.status === 'end' || closing.aborted) return;
  await new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      redis.off('ready', done).off('end', done);
      closing.removeEventListener('abort', done);
      resolve();
    };
    // Not keeping the process alive for a warm nobody waits on any more.
    const timer = setTimeout(done, timeoutMs).unref();
    redis.once('ready', done).once('end', done);
    // A client given a connection it does not own does not end it on close(): stop waiting then.
    closing.addEventListener('abort', done, { once: true });
  });
}
