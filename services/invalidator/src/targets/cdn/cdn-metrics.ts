import { Counter, Gauge, Registry } from '@walpurge/core';

/** What a CDN driver reports: API calls and items, time spent throttled, the provider's pause. */
export interface CdnMetrics {
  /** API calls by provider, kind (urls | tags | prefixes | paths | probe) and outcome. */
  apiCalls: Counter<'provider' | 'kind' | 'outcome'>;
  /** Items sent in successful calls, by provider and kind. */
  items: Counter<'provider' | 'kind'>;
  /** Seconds purges waited on a rate limit: the provider's token bucket, a Retry-After, CloudFront's in-flight limits. */
  throttledSeconds: Counter<'provider' | 'reason'>;
  /** CloudFront invalidation paths created (AWS bills the paths of a month beyond the free 1,000). */
  cloudFrontPaths: Counter;
  /** 1 while the provider refuses the credentials or the zone/service id and purges wait. */
  providerPaused: Gauge<'provider'>;
}

/** Outcome label of one API call. */
export type CallOutcome = 'success' | 'throttled' | 'transient' | 'rejected' | 'provider_refused';

/**
 * The CDN metrics on `registry`; calling it again with the same registry returns the same
 * metrics (several invalidators in one process, tests), instead of failing on duplicate names.
 */
export function createCdnMetrics(registry: Registry = new Registry()): CdnMetrics {
  const registers = [registry];
  const existing = <T>(name: string): T | undefined => registry.getSingleMetric(name) as T | undefined;
  return {
    apiCalls:
      existing('walpurge_cdn_api_calls_total') ??
      new Counter({
        name: 'walpurge_cdn_api_calls_total',
        help: 'CDN purge API calls by provider, kind and outcome (success | throttled: 429 | transient: 5xx, timeout, network | rejected: the request itself is at fault | provider_refused: credentials or zone/service id).',
        labelNames: ['provider', 'kind', 'outcome'],
        registers,
      }),
    items:
      existing('walpurge_cdn_items_total') ??
      new Counter({
        name: 'walpurge_cdn_items_total',
        help: 'Items (URLs, tags, prefixes, CloudFront paths) in successful CDN purge calls, by provider and kind.',
        labelNames: ['provider', 'kind'],
        registers,
      }),
    throttledSeconds:
      existing('walpurge_cdn_throttled_seconds_total') ??
      new Counter({
        name: 'walpurge_cdn_throttled_seconds_total',
        help: 'Seconds CDN purges waited on rate limits, by provider and reason (bucket: configured/plan limit | retry_after: the provider said 429 | in_flight: CloudFront invalidations in progress).',
        labelNames: ['provider', 'reason'],
        registers,
      }),
    cloudFrontPaths:
      existing('walpurge_cdn_cloudfront_paths_total') ??
      new Counter({
        name: 'walpurge_cdn_cloudfront_paths_total',
        help: 'CloudFront invalidation paths created; AWS bills each path of a month beyond the first 1,000 (per account).',
        registers,
      }),
    providerPaused:
      existing('walpurge_cdn_provider_paused') ??
      new Gauge({
        name: 'walpurge_cdn_provider_paused',
        help: '1 while the CDN provider refuses the credentials or the zone/service id: purges wait and one request probes every circuitProbeIntervalMs.',
        labelNames: ['provider'],
        registers,
      }),
  };
}
