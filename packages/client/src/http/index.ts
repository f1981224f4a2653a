export { cacheControl, type CacheControlOptions } from './cache-control.js';
export { etagForBody, formatETag, ifNoneMatchMatches } from './etag.js';
export { tagHeaders, validTags, DEFAULT_TAG_HEADERS, type TagHeaderName } from './cache-tags.js';
export {
  applyCacheHeaders,
  buildCacheHeaders,
  isNotModified,
  resolveETag,
  type CacheHeaderOptions,
  type RequestLike,
  type ResponseLike,
} from './cache-headers.js';
