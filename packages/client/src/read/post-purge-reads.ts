import { LRUCache } from 'lru-cache';
import type { ClientMetrics } from './metrics.js';

/**
 * Feeds `walpurge_client_post_purge_reads_total`: the hit ratio of lookups made shortly after a key
 * was invalidated, labelled by whether the key is refreshed on invalidation, so the two can be
 * compared. A window opens when this process learns a key was purged: an invalidation message for a
 * key it held in L1, or a refresh that found a hot key missing. It lasts `windowMs`; purges inside an
 * open window do not extend it.
 */
export class PostPurgeReads {
  private readonly windows: LRUCache<string, true>;

  constructor(
    windowMs: number,
    private readonly metrics: ClientMetrics,
    maxKeys = 10_000,
  ) {
    this.windows = new LRUCache<string, true>({ max: maxKeys, ttl: windowMs, ttlAutopurge: false });
  }

  invalidated(key: string): void {
    if (!this.windows.has(key)) this.windows.set(key, true);
  }

  /** A lookup answered from a cache level (`hit`) or not (`miss`). */
  read(key: string, hit: boolean, refreshed: boolean): void {
    if (this.windows.size === 0 || !this.windows.has(key)) return;
    this.metrics.postPurgeReads.inc({
      refresh: refreshed ? 'on-invalidate' : 'off',
      result: hit ? 'hit' : 'miss',
    });
  }
}
