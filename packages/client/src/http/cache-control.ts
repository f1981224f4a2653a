import { ErrorCode, WalpurgeError } from '@walpurge/core';

/** Seconds everywhere, as on the wire. */
export interface CacheControlOptions {
  /** Who may store it. `private`: browsers only; `public`: shared caches too (default when sMaxAge is set). */
  visibility?: 'public' | 'private';
  /** Freshness for every cache (browser included). */
  maxAge?: number;
  /** Freshness for shared caches (CDN, proxies); overrides maxAge there. */
  sMaxAge?: number;
  /** After expiry, serve stale for this long while revalidating in the background (RFC 5861). */
  staleWhileRevalidate?: number;
  /** After expiry, serve stale for this long when the origin errors (RFC 5861). */
  staleIfError?: number;
  noCache?: boolean;
  noStore?: boolean;
  mustRevalidate?: boolean;
  proxyRevalidate?: boolean;
  immutable?: boolean;
  noTransform?: boolean;
}

function seconds(name: string, value: number): number {
  if (!Number.isFinite(value) || value < 0) {
    throw new WalpurgeError(
      ErrorCode.ConfigInvalid,
      `Cache-Control ${name} must be a non-negative number of seconds, got ${value}`,
    );
  }
  return Math.floor(value);
}

/** Builds a Cache-Control header value; directive order is fixed so equal options give equal strings. */
export function cacheControl(options: CacheControlOptions): string {
  const parts: string[] = [];
  if (options.noStore) return 'no-store';
  const visibility = options.visibility ?? (options.sMaxAge !== undefined ? 'public' : undefined);
  if (visibility) parts.push(visibility);
  if (options.noCache) parts.push('no-cache');
  if (options.maxAge !== undefined) parts.push(`max-age=${seconds('max-age', options.maxAge)}`);
  if (options.sMaxAge !== undefined) parts.push(`s-maxage=${seconds('s-maxage', options.sMaxAge)}`);
  if (options.staleWhileRevalidate !== undefined) {
    parts.push(`stale-while-revalidate=${seconds('stale-while-revalidate', options.staleWhileRevalidate)}`);
  }
  if (options.staleIfError !== undefined)
    parts.push(`stale-if-error=${seconds('stale-if-error', options.staleIfError)}`);
  if (options.mustRevalidate) parts.push('must-revalidate');
  if (options.proxyRevalidate) parts.push('proxy-revalidate');
  if (options.immutable) parts.push('immutable');
  if (options.noTransform) parts.push('no-transform');
  return parts.join(', ');
}
