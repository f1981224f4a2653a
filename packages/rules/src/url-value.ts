/**
 * Row values inside CDN URLs and prefixes. A value must address only its own resource: it can
 * neither add structure (`/`, `?`, `#`, `&`), nor form an escape (`%`), nor reach a cache's own
 * syntax — CloudFront treats a trailing `*` as a wildcard, Varnish bans read URLs as regular
 * expressions — so everything but RFC 3986's unreserved characters (`A-Z a-z 0-9 - . _ ~`) is
 * percent-encoded from the value's UTF-8 bytes. Stricter than encodeURIComponent, which leaves
 * `! ' ( ) *` as they are and throws on a lone surrogate (written here as U+FFFD, like TextEncoder).
 */
const utf8 = new TextEncoder();

function isUnreserved(byte: number): boolean {
  return (
    (byte >= 0x30 && byte <= 0x39) || // 0-9
    (byte >= 0x41 && byte <= 0x5a) || // A-Z
    (byte >= 0x61 && byte <= 0x7a) || // a-z
    byte === 0x2d || // -
    byte === 0x2e || // .
    byte === 0x5f || // _
    byte === 0x7e // ~
  );
}

export function encodeUrlValue(value: string): string {
  let out = '';
  for (const byte of utf8.encode(value)) {
    out += isUnreserved(byte)
      ? String.fromCharCode(byte)
      : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** A value's place in the rendered text: [start, end). */
export interface ValueSpan {
  start: number;
  end: number;
  column: string;
}

/**
 * The value that makes a path segment `.` or `..` (also spelled `%2e`, which URL parsers treat
 * alike), if any: every URL parser (WHATWG `new URL`, fetch, the CDNs) resolves such a segment to
 * the parent path, so `https://x/p/{slug}/` with `..` would purge the whole site. Values cannot
 * contain `/`, `?` or `#` (encoded), so segment boundaries and the path's end come from the
 * template's own text, and each value lies within one segment.
 */
export function dotSegmentValue(text: string, values: readonly ValueSpan[]): ValueSpan | undefined {
  const queryAt = text.search(/[?#]/);
  const pathEnd = queryAt === -1 ? text.length : queryAt;
  let start = 0;
  while (start <= pathEnd) {
    const slash = text.indexOf('/', start);
    const end = slash === -1 || slash > pathEnd ? pathEnd : slash;
    const segment = text.slice(start, end).toLowerCase().replaceAll('%2e', '.');
    if (segment === '.' || segment === '..') {
      const value = values.find((v) => v.start >= start && v.end <= end);
      if (value) return value;
    }
    start = end + 1;
  }
  return undefined;
}

/**
 * The URL directory every entry of a templated CDN URL/prefix lives under: the literal text up to
 * its last `/` (CDN prefix purges work on path boundaries, and a query string is no prefix).
 * Undefined when that is a host's root, or not even a whole host: purging it would purge the site.
 */
export function urlDirectory(literal: string): string | undefined {
  const withoutQuery = literal.split(/[?#]/)[0] ?? '';
  const match = /^([a-z][a-z0-9+.-]*:\/\/[^/]+)(\/.*)?$/i.exec(withoutQuery);
  const path = match?.[2];
  if (!match || path === undefined) return undefined;
  const directory = path.slice(0, path.lastIndexOf('/') + 1);
  if (directory === '/') return undefined;
  return `${match[1] ?? ''}${directory}`;
}
