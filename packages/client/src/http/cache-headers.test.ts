import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cacheControl } from './cache-control.js';
import { applyCacheHeaders, buildCacheHeaders } from './cache-headers.js';
import { tagHeaders } from './cache-tags.js';
import { etagForBody, formatETag, ifNoneMatchMatches } from './etag.js';

describe('cacheControl', () => {
  it('writes every directive in a stable order', () => {
    expect(cacheControl({ maxAge: 60, sMaxAge: 600, staleWhileRevalidate: 30, staleIfError: 86_400 })).toBe(
      'public, max-age=60, s-maxage=600, stale-while-revalidate=30, stale-if-error=86400',
    );
    expect(cacheControl({ visibility: 'private', maxAge: 0, mustRevalidate: true })).toBe(
      'private, max-age=0, must-revalidate',
    );
    expect(cacheControl({ maxAge: 31_536_000, immutable: true })).toBe('max-age=31536000, immutable');
    expect(cacheControl({ noStore: true, maxAge: 60 })).toBe('no-store');
    expect(cacheControl({ maxAge: 1.9 })).toBe('max-age=1');
  });

  it('refuses negative or non-finite seconds', () => {
    expect(() => cacheControl({ maxAge: -1 })).toThrow(/max-age must be a non-negative/);
    expect(() => cacheControl({ sMaxAge: Number.NaN })).toThrow(/s-maxage/);
  });
});

describe('ETag', () => {
  it('is strong by default, weak on request, stable for equal bodies', () => {
    const strong = etagForBody('{"id":1}');
    expect(strong).toMatch(/^"[A-Za-z0-9_-]{27}"$/);
    expect(etagForBody(Buffer.from('{"id":1}'))).toBe(strong);
    expect(etagForBody('{"id":2}')).not.toBe(strong);
    expect(etagForBody('{"id":1}', { weak: true })).toBe(`W/${strong}`);
    expect(formatETag('v42', { weak: true })).toBe('W/"v42"');
    expect(() => formatETag('a"b')).toThrow(/double quote/);
  });

  it('matches If-None-Match with weak comparison, lists and *', () => {
    expect(ifNoneMatchMatches('"abc"', '"abc"')).toBe(true);
    expect(ifNoneMatchMatches('W/"abc"', '"abc"')).toBe(true);
    expect(ifNoneMatchMatches('"abc"', 'W/"abc"')).toBe(true);
    expect(ifNoneMatchMatches('"x", W/"y" ,"abc"', '"abc"')).toBe(true);
    expect(ifNoneMatchMatches(['"x"', '"abc"'], '"abc"')).toBe(true);
    expect(ifNoneMatchMatches('*', '"anything"')).toBe(true);
    expect(ifNoneMatchMatches('"abcd"', '"abc"')).toBe(false);
    expect(ifNoneMatchMatches('abc', '"abc"')).toBe(false);
    expect(ifNoneMatchMatches(undefined, '"abc"')).toBe(false);
  });
});

describe('tag headers', () => {
  it('joins rendered rule tags for Fastly (space) and Cloudflare (comma), de-duplicated', () => {
    expect(tagHeaders(['user-42', 'team-7', 'user-42'])).toEqual({
      'Surrogate-Key': 'user-42 team-7',
      'Cache-Tag': 'user-42,team-7',
    });
    expect(tagHeaders(['user-42'], ['Cache-Tag'])).toEqual({ 'Cache-Tag': 'user-42' });
    expect(tagHeaders([])).toEqual({});
  });

  it('refuses tags that a separator would split into other tags', () => {
    expect(() => tagHeaders(['user 42'])).toThrow(/not usable in a CDN header/);
    expect(() => tagHeaders(['a,b'])).toThrow(/not usable/);
    expect(() => tagHeaders([''])).toThrow(/not usable/);
    expect(() => tagHeaders(['x'.repeat(1025)])).toThrow(/not usable/);
  });
});

describe('applyCacheHeaders on a node http server', () => {
  let server: Server;
  let base: string;
  const body = JSON.stringify({ id: 42, name: 'Ada' });

  beforeAll(async () => {
    server = createServer((req, res) => {
      const notModified = applyCacheHeaders(req, res, {
        cacheControl: { maxAge: 60, sMaxAge: 300, staleWhileRevalidate: 30, staleIfError: 600 },
        etag: { body },
        tags: ['user-42', 'users'],
      });
      if (notModified) {
        res.end();
        return;
      }
      res.setHeader('Content-Type', 'application/json');
      res.end(req.method === 'HEAD' ? undefined : body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  it('sends 200 with all headers, then 304 with an empty body for a matching If-None-Match', async () => {
    const first = await fetch(`${base}/users/42`);
    expect(first.status).toBe(200);
    expect(await first.text()).toBe(body);
    const etag = first.headers.get('etag');
    expect(etag).toBe(etagForBody(body));
    expect(first.headers.get('cache-control')).toBe(
      'public, max-age=60, s-maxage=300, stale-while-revalidate=30, stale-if-error=600',
    );
    expect(first.headers.get('surrogate-key')).toBe('user-42 users');
    expect(first.headers.get('cache-tag')).toBe('user-42,users');

    const second = await fetch(`${base}/users/42`, { headers: { 'If-None-Match': `W/${etag ?? ''}` } });
    expect(second.status).toBe(304);
    expect(await second.text()).toBe('');
    expect(second.headers.get('etag')).toBe(etag);
    expect(second.headers.get('cache-control')).toContain('max-age=60');

    const changed = await fetch(`${base}/users/42`, { headers: { 'If-None-Match': '"something-else"' } });
    expect(changed.status).toBe(200);

    const post = await fetch(`${base}/users/42`, {
      method: 'POST',
      headers: { 'If-None-Match': etag ?? '' },
    });
    expect(post.status).toBe(200);
  });
});

describe('applyCacheHeaders on a fastify-style reply', () => {
  it('uses reply.header() and reply.code()', () => {
    const headers: Record<string, string> = {};
    let status = 200;
    const reply = {
      header(name: string, value: string) {
        headers[name] = value;
        return reply;
      },
      code(statusCode: number) {
        status = statusCode;
        return reply;
      },
    };
    const notModified = applyCacheHeaders({ method: 'GET', headers: { 'if-none-match': '"v7"' } }, reply, {
      cacheControl: { maxAge: 5 },
      etag: { value: 'v7', weak: true },
      tags: ['post-7'],
      tagHeaders: ['Surrogate-Key'],
    });
    expect(notModified).toBe(true);
    expect(status).toBe(304);
    expect(headers).toEqual({ 'Cache-Control': 'max-age=5', ETag: 'W/"v7"', 'Surrogate-Key': 'post-7' });
    expect(buildCacheHeaders({ etag: '"ready"' })).toEqual({ ETag: '"ready"' });
  });
});
