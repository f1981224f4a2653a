import type { RateLimitFigures, RateLimitOverride } from '@walpurge/config';
import type { CdnMetrics } from './cdn-metrics.js';
import { TokenBucket, type Clock } from '@walpurge/core';

/**
 * The bucket for one limit: the config's override on top of the documented default. No default
 * and no override: no bucket (the provider's own 429 + Retry-After still paces the driver).
 */
export function bucketFor(
  defaults: RateLimitFigures | undefined,
  override: RateLimitOverride | undefined,
  clock?: Clock,
): TokenBucket | undefined {
  const perSecond =
    override?.perSecond ??
    (override?.perMinute === undefined ? defaults?.perSecond : override.perMinute / 60);
  if (perSecond === undefined) return undefined;
  // Without a burst, one second's worth (at least one token) may go at once.
  const burst = override?.burst ?? defaults?.burst ?? Math.max(1, Math.ceil(perSecond));
  return new TokenBucket(perSecond, burst, clock);
}

/** Waits on a driver's bucket before an API call and counts the time spent waiting. */
export async function takeFromBucket(
  bucket: TokenBucket | undefined,
  count: number,
  signal: AbortSignal,
  provider: string,
  metrics: CdnMetrics,
): Promise<void> {
  if (!bucket) return;
  const waitedMs = await bucket.take(count, signal);
  if (waitedMs > 0) metrics.throttledSeconds.inc({ provider, reason: 'bucket' }, waitedMs / 1000);
}
