import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CdnConfig, Rule } from '@walpurge/config';
import type { ChangeEvent } from '@walpurge/protocol';
import { compileRules, emptyTargets, TargetAccumulator, type PurgeTargets } from '@walpurge/rules';
import { RecordingServer } from '../../../test/recording-server.js';
import { CloudflarePurger } from './cloudflare.js';
import { CloudFrontPurger, invalidationBatches } from './cloudfront.js';
import { FastlyPurger } from './fastly.js';
import { HttpPurger } from './generic-http.js';
import { parseRetryAfter } from './http-request.js';

const options = { requestTimeoutMs: 2_000, backoff: { initialMs: 10, maxMs: 50, jitter: 0 } };
const TOKEN = 'secret-token-123';

function targets(cdn: Partial<PurgeTargets['cdn']>): PurgeTargets {
  const t = emptyTargets();
  Object.assign(t.cdn, cdn);
  return t;
}

function context() {
  const retries: Array<{ error: unknown; delayMs: number }> = [];
  return {
    retries,
    signal: new AbortController().signal,
    onRetry: (error: unknown, delayMs: number) => retries.push({ error, delayMs }),
  };
}

let server: RecordingServer;
let base: string;
beforeEach(async () => {
  server = new RecordingServer();
  base = await server.start();
});
afterEach(() => server.stop());

describe('Cloudflare', () => {
  const make = (maxItemsPerCall = 30) =>
    new CloudflarePurger(
      CdnConfig.parse({
        cloudflare: { zoneId: 'zone1', apiToken: TOKEN, baseUrl: `${base}/client/v4`, maxItemsPerCall },
      }).cloudflare!,
      options,
    );

  it('sends files, tags and prefixes in separate calls within the per-call item limit', async () => {
    const urls = Array.from({ length: 65 }, (_, i) => `https://ex.com/u/${i}`);
    await make().purge(
      targets({ urls, tags: ['a', 'b'], prefixes: ['https://ex.com/p/', 'http://ex.com/q'] }),
      context(),
    );
    expect(server.requests.map((r) => [r.method, r.path])).toEqual(
      Array(5).fill(['POST', '/client/v4/zones/zone1/purge_cache']),
    );
    const bodies = server.requests.map((r) => JSON.parse(r.body) as Record<string, string[]>);
    expect(bodies.map((b) => Object.entries(b).map(([k, v]) => `${k}:${v.length}`))).toEqual([
      ['files:30'],
      ['files:30'],
      ['files:5'],
      ['tags:2'],
      ['prefixes:2'],
    ]);
    expect(bodies.flatMap((b) => b['files'] ?? [])).toEqual(urls);
    expect(bodies[4]).toEqual({ prefixes: ['ex.com/p/', 'ex.com/q'] });
    expect(server.requests[0]?.headers['authorization']).toBe(`Bearer ${TOKEN}`);
    expect(server.requests[0]?.headers['content-type']).toBe('application/json');
  });

  it('waits what Retry-After says on 429, then succeeds', async () => {
    server.failNext({ status: 429, headers: { 'retry-after': '1' }, body: '{"success":false}' });
    const ctx = context();
    const began = Date.now();
    await make().purge(targets({ tags: ['t'] }), ctx);
    expect(Date.now() - began).toBeGreaterThanOrEqual(950);
    expect(ctx.retries.map((r) => r.delayMs)).toEqual([1000]);
    expect(server.requests).toHaveLength(2);
    expect(server.requests[1]?.body).toBe(server.requests[0]?.body);
  });

  it('retries 500s with backoff until success, repeating only the failed call', async () => {
    server.failNext({ status: 500, body: 'oops' }, 3);
    const ctx = context();
    await make(1).purge(targets({ urls: ['https://ex.com/a'] }), ctx);
    expect(ctx.retries).toHaveLength(3);
    expect(server.requests).toHaveLength(4);
  });

  it('fails without retry on a request fault and on success:false, never leaking the token', async () => {
    server.failNext({ status: 400, body: '{"success":false,"errors":[{"code":1012,"message":"bad url"}]}' });
    const error = await make()
      .purge(targets({ urls: ['https://ex.com/x'] }), context())
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ retriable: false, code: 'WP_PURGE_FAILED' });
    expect(String((error as Error).message)).toContain('400');
    expect(String((error as Error).message)).not.toContain(TOKEN);
    server.defaultReply = () => ({
      status: 200,
      body: '{"success":false,"errors":[{"code":1,"message":"nope"}]}',
    });
    await expect(make().purge(targets({ tags: ['t'] }), context())).rejects.toThrow(
      /did not succeed: 1 nope/,
    );
  });

  it('stops retrying when the signal aborts', async () => {
    server.defaultReply = () => ({ status: 503 });
    const abort = new AbortController();
    setTimeout(() => abort.abort(), 100);
    await expect(make().purge(targets({ tags: ['t'] }), { signal: abort.signal })).rejects.toThrow(/abort/);
  });

  it('reads the token from CLOUDFLARE_API_TOKEN and refuses to start without one', () => {
    const config = CdnConfig.parse({ cloudflare: { zoneId: 'z' } }).cloudflare!;
    expect(() => new CloudflarePurger(config, { ...options, env: {} })).toThrow(/no API token/);
    expect(new CloudflarePurger(config, { ...options, env: { CLOUDFLARE_API_TOKEN: 'x' } }).name).toBe(
      'cloudflare',
    );
  });
});

describe('Fastly', () => {
  const make = (softPurge = false) =>
    new FastlyPurger(
      CdnConfig.parse({
        fastly: { serviceId: 'svc', apiToken: TOKEN, baseUrl: base, softPurge, maxKeysPerCall: 256 },
      }).fastly!,
      options,
    );

  it('reads the token from FASTLY_API_TOKEN and refuses to start without one', () => {
    const config = CdnConfig.parse({ fastly: { serviceId: 'svc' } }).fastly!;
    let refused: unknown;
    try {
      new FastlyPurger(config, { ...options, env: {} });
    } catch (error) {
      refused = error;
    }
    expect(refused).toMatchObject({
      message: expect.stringMatching(/cdn\.fastly: no API token/),
      hint: expect.stringContaining('${FASTLY_API_TOKEN}) or the FASTLY_API_TOKEN environment variable'),
    });
    expect(new FastlyPurger(config, { ...options, env: { FASTLY_API_TOKEN: 'x' } }).name).toBe('fastly');
  });

  it('batches surrogate keys in the Surrogate-Key header, 256 per call', async () => {
    const keys = Array.from({ length: 300 }, (_, i) => `k${i}`);
    await make().purge(targets({ tags: keys }), context());
    expect(server.requests.map((r) => r.path)).toEqual(['/service/svc/purge', '/service/svc/purge']);
    const sent = server.requests.map((r) => String(r.headers['surrogate-key']).split(' '));
    expect(sent.map((s) => s.length)).toEqual([256, 44]);
    expect(sent.flat()).toEqual(keys);
    expect(server.requests[0]?.headers['fastly-key']).toBe(TOKEN);
    expect(server.requests[0]?.headers['fastly-soft-purge']).toBeUndefined();
  });

  it('soft-purges when configured, purges URLs one by one and keys with spaces alone', async () => {
    await make(true).purge(targets({ tags: ['a', 'b c'], urls: ['https://www.ex.com/x?y=1'] }), context());
    expect(server.requests.map((r) => [r.path, r.headers['surrogate-key']])).toEqual([
      ['/service/svc/purge', 'a'],
      ['/service/svc/purge/b%20c', undefined],
      ['/purge/www.ex.com/x?y=1', undefined],
    ]);
    expect(server.requests.every((r) => r.headers['fastly-soft-purge'] === '1')).toBe(true);
  });

  it('honours 429 Retry-After', async () => {
    server.failNext({ status: 429, headers: { 'retry-after': '0.2' } });
    const ctx = context();
    await make().purge(targets({ tags: ['a'] }), ctx);
    expect(ctx.retries.map((r) => r.delayMs)).toEqual([200]);
  });
});

describe('CloudFront', () => {
  const ok = (body: string) => {
    const callerReference = /<CallerReference>([^<]+)</.exec(body)?.[1] ?? 'x';
    return {
      status: 201,
      headers: {
        'content-type': 'text/xml',
        location: 'https://cloudfront.amazonaws.com/2020-05-31/distribution/D1/invalidation/I1',
      },
      body: `<?xml version="1.0"?><Invalidation xmlns="http://cloudfront.amazonaws.com/doc/2020-05-31/"><Id>I1</Id><Status>InProgress</Status><CreateTime>2026-01-01T00:00:00Z</CreateTime><InvalidationBatch><Paths><Quantity>1</Quantity><Items><Path>/a</Path></Items></Paths><CallerReference>${callerReference}</CallerReference></InvalidationBatch></Invalidation>`,
    };
  };
  const make = (maxPathsPerInvalidation = 3000) =>
    new CloudFrontPurger(
      CdnConfig.parse({
        cloudfront: {
          distributionId: 'D1',
          endpoint: base,
          accessKeyId: 'AKIDTEST',
          secretAccessKey: TOKEN,
          maxPathsPerInvalidation,
        },
      }).cloudfront!,
      options,
    );

  it('creates invalidations of URL paths and prefix wildcards, batched', async () => {
    server.defaultReply = (request) => ok(request.body);
    const purger = make(2);
    await purger.purge(
      targets({
        urls: ['https://ex.com/a', 'https://ex.com/b?x=1', 'https://ex.com/a'],
        prefixes: ['https://ex.com/users/'],
      }),
      context(),
    );
    await purger.close();
    expect(server.requests.map((r) => [r.method, r.path])).toEqual(
      Array(2).fill(['POST', '/2020-05-31/distribution/D1/invalidation']),
    );
    const paths = server.requests.map((r) => [...r.body.matchAll(/<Path>([^<]+)<\/Path>/g)].map((m) => m[1]));
    expect(paths).toEqual([['/a', '/b?x=1'], ['/users/*']]);
    expect(server.requests[0]?.body).toContain('<Quantity>2</Quantity>');
    expect(String(server.requests[0]?.headers['authorization'])).toContain('AKIDTEST');
    expect(String(server.requests[0]?.headers['authorization'])).not.toContain(TOKEN);
  });

  it('retries throttling and 5xx with the same CallerReference', async () => {
    const error = (code: string) =>
      `<?xml version="1.0"?><ErrorResponse><Error><Type>Sender</Type><Code>${code}</Code><Message>slow down</Message></Error><RequestId>r1</RequestId></ErrorResponse>`;
    server.failNext({
      status: 400,
      headers: { 'content-type': 'text/xml' },
      body: error('TooManyInvalidationsInProgress'),
    });
    server.failNext({
      status: 503,
      headers: { 'content-type': 'text/xml' },
      body: error('ServiceUnavailable'),
    });
    server.defaultReply = (request) => ok(request.body);
    const ctx = context();
    const purger = make();
    await purger.purge(targets({ urls: ['https://ex.com/a'] }), ctx);
    await purger.close();
    expect(ctx.retries).toHaveLength(2);
    const references = server.requests.map((r) => /<CallerReference>([^<]+)</.exec(r.body)?.[1]);
    expect(new Set(references).size).toBe(1);
  });

  it('cuts invalidations by paths and by wildcard paths, keeping the paths in order', () => {
    const paths = ['/a', '/p1*', '/p2*', '/b', '/p3*'];
    expect(invalidationBatches(paths, 3, 2)).toEqual([
      ['/a', '/p1*', '/p2*'],
      ['/b', '/p3*'],
    ]);
    expect(invalidationBatches(paths, 10, 1)).toEqual([['/a', '/p1*'], ['/p2*', '/b'], ['/p3*']]);
    expect(invalidationBatches([], 10, 1)).toEqual([]);
  });

  it('does not retry an invalid request', async () => {
    server.defaultReply = () => ({
      status: 400,
      headers: { 'content-type': 'text/xml' },
      body: '<ErrorResponse><Error><Code>InvalidArgument</Code><Message>bad path</Message></Error></ErrorResponse>',
    });
    const purger = make();
    await expect(purger.purge(targets({ urls: ['https://ex.com/a'] }), context())).rejects.toMatchObject({
      retriable: false,
    });
    await purger.close();
    expect(server.requests).toHaveLength(1);
  });
});

describe('generic HTTP', () => {
  it('sends PURGE per URL to the URL itself, 404 meaning "not cached"', async () => {
    server.defaultReply = (request) => ({ status: request.path === '/missing' ? 404 : 200 });
    const purger = new HttpPurger(CdnConfig.parse({ http: { headers: { 'x-auth': 'a' } } }).http!, options);
    await purger.purge(targets({ urls: [`${base}/a?b=1`, `${base}/missing`], tags: ['ignored'] }), context());
    expect(server.requests.map((r) => [r.method, r.path, r.headers['x-auth']])).toEqual([
      ['PURGE', '/a?b=1', 'a'],
      ['PURGE', '/missing', 'a'],
    ]);
  });

  // (Node's HTTP parser rejects BAN, so the recording server can only see methods it knows.)
  it('sends to a configured endpoint with the original host, and purges tags via a header', async () => {
    const purger = new HttpPurger(
      CdnConfig.parse({
        http: { method: 'PURGE', endpoint: `${base}/`, tagMethod: 'UNLINK', tagHeader: 'xkey' },
      }).http!,
      options,
    );
    expect(purger.count(targets({ urls: ['https://shop.ex.com/p/1'], tags: ['a', 'b', 'c d'] }))).toBe(4);
    await purger.purge(targets({ urls: ['https://shop.ex.com/p/1'], tags: ['a', 'b', 'c d'] }), context());
    expect(
      server.requests.map((r) => [r.method, r.path, r.headers['x-purge-host'] ?? r.headers['xkey']]),
    ).toEqual([
      ['PURGE', '/p/1', 'shop.ex.com'],
      ['UNLINK', '/', 'a b'],
    ]);
  });

  it('retries a failing cache server until it answers', async () => {
    server.failNext({ status: 502 }, 2);
    const ctx = context();
    await new HttpPurger(CdnConfig.parse({ http: {} }).http!, options).purge(
      targets({ urls: [`${base}/x`] }),
      ctx,
    );
    expect(ctx.retries).toHaveLength(2);
    expect(server.requests).toHaveLength(3);
  });
});

describe('parseRetryAfter', () => {
  it('reads seconds and HTTP dates, capped at 5 minutes', () => {
    expect(parseRetryAfter('3')).toBe(3000);
    expect(parseRetryAfter(new Date(10_000).toUTCString(), 4_000)).toBe(6000);
    expect(parseRetryAfter('99999')).toBe(300_000);
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(null)).toBeUndefined();
  });
});

describe('hostile row values never widen a CDN purge', () => {
  const rules = compileRules([
    Rule.parse({
      table: 'posts',
      cdn: { urls: ['https://ex.com/p/{slug}'], prefixes: ['https://ex.com/p/{slug}/'] },
      fallback: { cdn: { tags: ['posts'] } },
    }),
  ]);
  const hostile = [
    'a*',
    '*',
    'a?',
    '?',
    'a#',
    '#',
    '100%',
    '%2e%2e',
    'a/b',
    '/',
    'a b',
    'ü',
    "a'(b)!",
    '.',
    '..',
  ];
  // Paths of other rows and of the rest of the site: none of the hostile rows may reach them.
  const neighbours = [
    '/',
    '/admin',
    '/index.html',
    '/p/',
    '/p/a',
    '/p/ab',
    '/p/a/b',
    '/p/a/index.html',
    '/p/ab/c',
    '/p/x',
    '/p/100',
    '/p/b',
    '/p/u',
  ];
  const post = (slug: string): ChangeEvent => ({
    v: 1,
    op: 'c',
    source: { db: 'app', schema: 'public', table: 'posts', lsn: '0/1', xid: 1, commitTs: '', origin: null },
    key: { id: 1 },
    before: null,
    after: { id: 1, slug },
    unchanged: [],
  });
  const planned = (): PurgeTargets => {
    const accumulator = new TargetAccumulator();
    for (const slug of hostile) accumulator.add(rules.planPurges(post(slug)));
    return accumulator.toTargets();
  };
  /** CloudFront: a path ending in `*` invalidates everything it starts; any other path only itself. */
  const covers = (path: string, request: string): boolean =>
    path.endsWith('*') ? request.startsWith(path.slice(0, -1)) : request === path;

  /** Runs CloudFront's CreateInvalidation against the recording server; returns the paths sent. */
  async function cloudFrontInvalidates(targets: PurgeTargets): Promise<string[]> {
    server.defaultReply = (request) => ({
      status: 201,
      headers: { 'content-type': 'text/xml' },
      body: `<?xml version="1.0"?><Invalidation xmlns="http://cloudfront.amazonaws.com/doc/2020-05-31/"><Id>I1</Id><Status>InProgress</Status><CreateTime>2026-01-01T00:00:00Z</CreateTime><InvalidationBatch><Paths><Quantity>0</Quantity></Paths><CallerReference>${/<CallerReference>([^<]+)</.exec(request.body)?.[1] ?? 'x'}</CallerReference></InvalidationBatch></Invalidation>`,
    });
    const purger = new CloudFrontPurger(
      CdnConfig.parse({
        cloudfront: { distributionId: 'D1', endpoint: base, accessKeyId: 'AKIDTEST', secretAccessKey: TOKEN },
      }).cloudfront!,
      options,
    );
    try {
      await purger.purge(targets, context());
    } finally {
      await purger.close();
    }
    return server.requests.flatMap((r) =>
      [...r.body.matchAll(/<Path>([^<]+)<\/Path>/g)].map((m) => m[1] ?? ''),
    );
  }

  it('CloudFront: no invalidation path covers a neighbouring path; each row still covers its own', async () => {
    const paths = await cloudFrontInvalidates(planned());
    expect(paths.length).toBeGreaterThan(0);
    for (const path of paths)
      expect(
        neighbours.filter((neighbour) => covers(path, neighbour)),
        path,
      ).toEqual([]);
    expect(paths).toEqual(
      expect.arrayContaining(['/p/a%2A', '/p/a%2A/*', '/p/%2A', '/p/%3F/*', '/p/100%25']),
    );
    // `.` and `..` would resolve to /p/ and /: not rendered, the rule's fallback (a tag) is purged instead.
    expect(paths.filter((path) => /^\/p\/\.{1,2}(\/|$)/.test(path))).toEqual([]);
    expect(planned().cdn.tags).toEqual(['posts']);
  });

  it('CloudFront: a literal `*` of an exact URL stays literal; only a prefix gets the wildcard', async () => {
    const targets = emptyTargets();
    targets.cdn.urls.push('https://ex.com/a*', 'https://ex.com/b*/c');
    targets.cdn.prefixes.push('https://ex.com/d*/');
    const paths = await cloudFrontInvalidates(targets);
    expect(paths).toEqual(['/a%2A', '/b%2A/c', '/d%2A/*']);
  });

  it('Cloudflare and generic HTTP: URLs and prefixes address only the row itself', async () => {
    const targets = planned();
    const cloudflare = new CloudflarePurger(
      CdnConfig.parse({ cloudflare: { zoneId: 'z', apiToken: TOKEN, baseUrl: base } }).cloudflare!,
      options,
    );
    await cloudflare.purge(targets, context());
    const bodies = server.requests.map((r) => JSON.parse(r.body) as Record<string, string[]>);
    const files = bodies.flatMap((b) => b['files'] ?? []);
    const prefixes = bodies.flatMap((b) => b['prefixes'] ?? []);
    for (const neighbour of neighbours) {
      expect(files).not.toContain(`https://ex.com${neighbour}`);
      expect(
        prefixes.filter((prefix) => `ex.com${neighbour}`.startsWith(prefix)),
        neighbour,
      ).toEqual([]);
    }
    expect(files).toContain('https://ex.com/p/a%2A');
    expect(prefixes).toContain('ex.com/p/a%2A/');

    server.requests.length = 0;
    const http = new HttpPurger(CdnConfig.parse({ http: { endpoint: `${base}/` } }).http!, options);
    await http.purge(targets, context());
    const purged = server.requests.map((r) => r.path);
    expect(purged.length).toBe(targets.cdn.urls.length);
    for (const neighbour of neighbours) expect(purged).not.toContain(neighbour);
    expect(purged).toEqual(expect.arrayContaining(['/p/a%2A', '/p/%3F', '/p/%23', '/p/a%2Fb', '/p/%C3%BC']));
  });
});
