import { cacheControl, type CacheControlOptions } from './cache-control.js';
import { tagHeaders, type TagHeaderName } from './cache-tags.js';
import { etagForBody, formatETag, ifNoneMatchMatches } from './etag.js';

export interface CacheHeaderOptions {
  cacheControl?: CacheControlOptions;
  /**
   * The validator: a ready ETag (`"abc"` / `W/"abc"`), `{ value, weak }` for an opaque value such as a
   * row version, or `{ body, weak }` to hash the response body.
   */
  etag?: string | { value: string; weak?: boolean } | { body: string | Uint8Array; weak?: boolean };
  /** Tag names as the rules' `cdn.tags` render them. */
  tags?: Iterable<string>;
  tagHeaders?: readonly TagHeaderName[];
}

/** Minimal shapes of node/express responses (setHeader + statusCode) and fastify replies (header + code). */
export type ResponseLike =
  | { setHeader(name: string, value: string): unknown; statusCode: number }
  | { header(name: string, value: string): unknown; code(statusCode: number): unknown };

export interface RequestLike {
  method?: string | undefined;
  headers: Record<string, string | string[] | undefined>;
}

export function resolveETag(etag: CacheHeaderOptions['etag']): string | undefined {
  if (etag === undefined) return undefined;
  if (typeof etag === 'string')
    return etag.startsWith('"') || etag.startsWith('W/"') ? etag : formatETag(etag);
  if ('body' in etag) return etagForBody(etag.body, { weak: etag.weak ?? false });
  return formatETag(etag.value, { weak: etag.weak ?? false });
}

/** Header name → value, without touching any response (for frameworks not covered below). */
export function buildCacheHeaders(options: CacheHeaderOptions): Record<string, string> {
  const headers: Record<string, string> = {};
  if (options.cacheControl) headers['Cache-Control'] = cacheControl(options.cacheControl);
  const etag = resolveETag(options.etag);
  if (etag) headers['ETag'] = etag;
  if (options.tags) Object.assign(headers, tagHeaders(options.tags, options.tagHeaders));
  return headers;
}

/** True when a GET/HEAD request's If-None-Match matches: answer 304 without a body. */
export function isNotModified(request: RequestLike, etag: string | undefined): boolean {
  if (!etag) return false;
  const method = (request.method ?? 'GET').toUpperCase();
  if (method !== 'GET' && method !== 'HEAD') return false;
  return ifNoneMatchMatches(request.headers['if-none-match'], etag);
}

/**
 * Sets Cache-Control, ETag and tag headers on a node http / express / fastify response and, when the
 * client's copy is current, the 304 status. Returns `true` for 304: the caller then ends the response
 * without a body (`res.end()` / `reply.send()`). A 304 keeps Cache-Control, ETag and tags, as RFC 9110
 * asks, so caches refresh their stored copy's freshness.
 */
export function applyCacheHeaders(
  request: RequestLike,
  response: ResponseLike,
  options: CacheHeaderOptions,
): boolean {
  const headers = buildCacheHeaders(options);
  for (const [name, value] of Object.entries(headers)) {
    if ('setHeader' in response) response.setHeader(name, value);
    else response.header(name, value);
  }
  const notModified = isNotModified(request, headers['ETag']);
  if (notModified) {
    if ('code' in response) response.code(304);
    else response.statusCode = 304;
  }
  return notModified;
}
