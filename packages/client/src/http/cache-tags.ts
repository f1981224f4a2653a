import { ErrorCode, WalpurgeError } from '@walpurge/core';

/**
 * CDN tag headers from the same tag names the rules' `cdn.tags` render (e.g. `user-42` for
 * `user-{id}`), so the invalidator's purge-by-tag reaches exactly these responses.
 *
 * - `Surrogate-Key` (Fastly, also Akamai via Edge-Cache-Tag equivalents): space-separated.
 * - `Cache-Tag` (Cloudflare): comma-separated.
 * A tag that contains a separator would silently turn into two other tags, so it is refused.
 */
export type TagHeaderName = 'Surrogate-Key' | 'Cache-Tag';

export const DEFAULT_TAG_HEADERS: readonly TagHeaderName[] = ['Surrogate-Key', 'Cache-Tag'];

// Visible ASCII except the comma; no whitespace. Both CDNs cap a tag at 1,024 bytes.
const TAG = /^[\x21-\x2b\x2d-\x7e]{1,1024}$/;

export function validTags(tags: Iterable<string>): string[] {
  const unique = [...new Set(tags)];
  for (const tag of unique) {
    if (!TAG.test(tag)) {
      throw new WalpurgeError(
        ErrorCode.ConfigInvalid,
        `cache tag ${JSON.stringify(tag)} is not usable in a CDN header`,
        {
          hint: 'tags must be 1–1024 visible ASCII characters without spaces or commas',
        },
      );
    }
  }
  return unique;
}

export function tagHeaders(
  tags: Iterable<string>,
  headers: readonly TagHeaderName[] = DEFAULT_TAG_HEADERS,
): Record<string, string> {
  const list = validTags(tags);
  const result: Record<string, string> = {};
  if (list.length === 0) return result;
  for (const header of headers) result[header] = list.join(header === 'Cache-Tag' ? ',' : ' ');
  return result;
}
