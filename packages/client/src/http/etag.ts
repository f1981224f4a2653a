import { createHash } from 'node:crypto';
import { ErrorCode, WalpurgeError } from '@walpurge/core';

// RFC 9110 etagc: %x21 / %x23-7E / obs-text — anything visible except the double quote.
const ETAG_CHARS = /^[\x21\x23-\x7e\x80-\xff]*$/;

/**
 * A strong validator changes whenever the bytes change; a weak one (`W/"…"`) only promises semantic
 * equivalence (same row version, different JSON whitespace or compression).
 */
export function formatETag(opaque: string, options: { weak?: boolean } = {}): string {
  if (!ETAG_CHARS.test(opaque)) {
    throw new WalpurgeError(
      ErrorCode.ConfigInvalid,
      `ETag value ${JSON.stringify(opaque)} contains a double quote or a control character`,
    );
  }
  return `${options.weak ? 'W/' : ''}"${opaque}"`;
}

/** ETag from the response body: base64url SHA-1 of the bytes (collision resistance is not the point; spread is). */
export function etagForBody(body: string | Uint8Array, options: { weak?: boolean } = {}): string {
  const digest = createHash('sha1').update(body).digest('base64url');
  return formatETag(digest, options);
}

/** The opaque part of an entity tag, for weak comparison (RFC 9110 §8.8.3.2). */
function opaqueOf(tag: string): string | undefined {
  const match = /^(?:W\/)?"([^"]*)"$/.exec(tag.trim());
  return match?.[1];
}

/**
 * Does an If-None-Match header match this ETag? Weak comparison, as RFC 9110 prescribes for
 * If-None-Match: `W/"x"` matches `"x"`. `*` matches any current representation.
 */
export function ifNoneMatchMatches(header: string | readonly string[] | undefined, etag: string): boolean {
  if (header === undefined) return false;
  const text = typeof header === 'string' ? header : header.join(',');
  if (text.trim() === '*') return true;
  const ours = opaqueOf(etag);
  if (ours === undefined) return false;
  for (const match of text.matchAll(/(?:W\/)?"([^"]*)"/g)) {
    if (match[1] === ours) return true;
  }
  return false;
}
