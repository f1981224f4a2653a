import { Counter, Histogram, latencyBuckets, type Registry } from '@walpurge/core';

/**
 * Read-side metrics. Get-or-create so several clients can share one registry. No hit-ratio gauge:
 * a ratio cannot be summed over pods or windows, so the hit rate is derived in PromQL from
 * `walpurge_client_requests_total` (docs/client.md, "Metrics").
 */
export interface ClientMetrics {
  requests: Counter<'level' | 'result'>;
  staleServed: Counter;
  leaseWaits: Counter;
  leaseWaitTimeouts: Counter;
  loaderCalls: Counter<'reason'>;
  loaderErrors: Counter;
  fillRejections: Counter;
  fillErrors: Counter;
  fillsWithoutVersion: Counter<'reason'>;
  earlyRefreshes: Counter;
  failOpen: Counter<'reason'>;
  decodeErrors: Counter;
  l1Invalidations: Counter;
  l1Flushes: Counter<'reason'>;
  trackingSetupFailures: Counter;
  tagMembersPruned: Counter;
  namespaceVersionReads: Counter<'source'>;
  warmEntries: Counter<'outcome'>;
  refreshes: Counter<'outcome'>;
  refreshKeysDropped: Counter<'reason'>;
  postPurgeReads: Counter<'refresh' | 'result'>;
  loaderDuration: Histogram;
}

export function createClientMetrics(registry: Registry): ClientMetrics {
  function counter<L extends string = never>(name: string, help: string, labelNames: L[] = []): Counter<L> {
    const existing = registry.getSingleMetric(name);
    if (existing) return existing as Counter<L>;
    return new Counter<L>({ name, help, labelNames, registers: [registry] });
  }
  const histogramName = 'walpurge_client_loader_duration_seconds';
  const loaderDuration =
    (registry.getSingleMetric(histogramName) as Histogram | undefined) ??
    new Histogram({
      name: histogramName,
      help: 'Time the loader (database fetch) took',
      buckets: latencyBuckets,
      registers: [registry],
    });
  const requests = counter(
    'walpurge_client_requests_total',
    'Cache lookups by level (l1, redis) and result (hit, stale, miss)',
    ['level', 'result'],
  );
  return {
    requests,
    staleServed: counter(
      'walpurge_client_stale_served_total',
      'Soft-expired values served inside the stale-while-revalidate window',
    ),
    leaseWaits: counter(
      'walpurge_client_lease_waits_total',
      'Misses that waited for another caller holding the lease instead of loading',
    ),
    leaseWaitTimeouts: counter(
      'walpurge_client_lease_wait_timeouts_total',
      'Lease waits that ran out of time and called the loader without storing',
    ),
    loaderCalls: counter('walpurge_client_loader_calls_total', 'Loader (database) calls by reason', [
      'reason',
    ]),
    loaderErrors: counter('walpurge_client_loader_errors_total', 'Loader calls that threw'),
    fillRejections: counter(
      'walpurge_client_fill_rejections_total',
      'Fills refused because the lease was purged or taken over (a write raced the read)',
    ),
    fillErrors: counter(
      'walpurge_client_fill_errors_total',
      'Fills that failed on the Redis side (timeout, connection)',
    ),
    fillsWithoutVersion: counter(
      'walpurge_client_fills_without_version_total',
      'Values stored without a row version although GetOptions.version was given, by reason (none: it returned null/undefined; threw; invalid: an unusable version)',
      ['reason'],
    ),
    earlyRefreshes: counter(
      'walpurge_client_early_refreshes_total',
      'Probabilistic (XFetch) refreshes started before expiry',
    ),
    failOpen: counter(
      'walpurge_client_fail_open_total',
      'Reads served straight from the loader because Redis was unavailable',
      ['reason'],
    ),
    decodeErrors: counter(
      'walpurge_client_decode_errors_total',
      'Stored entries that could not be decoded (treated as misses)',
    ),
    l1Invalidations: counter(
      'walpurge_client_l1_invalidations_total',
      'Keys evicted from the in-process cache by Redis invalidation messages',
    ),
    l1Flushes: counter('walpurge_client_l1_flushes_total', 'Whole in-process cache flushes by reason', [
      'reason',
    ]),
    trackingSetupFailures: counter(
      'walpurge_client_tracking_setup_failures_total',
      'Failed attempts to switch on Redis invalidation tracking (L1 stays bypassed; retried with backoff)',
    ),
    tagMembersPruned: counter(
      'walpurge_client_tag_members_pruned_total',
      'Tag-set members removed because their entry had expired or was evicted',
    ),
    namespaceVersionReads: counter(
      'walpurge_client_namespace_version_reads_total',
      'Namespace versions read to compose a key, by source (l1, redis)',
      ['source'],
    ),
    warmEntries: counter(
      'walpurge_client_warm_entries_total',
      'Entries handled by warm(): loaded, skipped_present, skipped_leased (another caller was loading it), rejected (purged or overwritten while loading), failed',
      ['outcome'],
    ),
    refreshes: counter(
      'walpurge_client_refreshes_total',
      "Background re-loads of refresh: 'on-invalidate' keys after an invalidation message: done, skipped_present, skipped_leased, rejected, failed",
      ['outcome'],
    ),
    refreshKeysDropped: counter(
      'walpurge_client_refresh_keys_dropped_total',
      'Keys no longer refreshed: idle (not read within refresh.idleTimeoutMs) or capacity (refresh.maxKeys reached)',
      ['reason'],
    ),
    postPurgeReads: counter(
      'walpurge_client_post_purge_reads_total',
      'Lookups of a key within refresh.postPurgeWindowMs after an invalidation message for it, by result (hit, miss) and whether the key is refreshed on invalidation (on-invalidate, off)',
      ['refresh', 'result'],
    ),
    loaderDuration,
  };
}
