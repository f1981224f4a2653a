import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CdnConfig } from '@walpurge/config';
import { createLogger, Registry } from '@walpurge/core';
import { emptyTargets, type PurgeTargets } from '@walpurge/rules';
import {
  cloudFrontApi,
  peakPerSecond,
  recordArrivals,
  replyByPath,
  tooManyRequestsFor,
} from '../../../test/cdn-server-modes.js';
import { RecordingServer } from '../../../test/recording-server.js';
import { createCdnMetrics } from './cdn-metrics.js';
import { CloudflarePurger } from './cloudflare.js';
import { CloudFrontPurger } from './cloudfront.js';
import { FastlyPurger } from './fastly.js';
import { HttpPurger } from './generic-http.js';

const TOKEN = 'secret-token-123';

function targets(cdn: Partial<PurgeTargets['cdn']>): PurgeTargets {
  const t = emptyTargets();
  Object.assign(t.cdn, cdn);
  return t;
}

let server: RecordingServer;
let base: string;
let registry: Registry;
let stop: AbortController;
beforeEach(async () => {
  server = new RecordingServer();
  base = await server.start();
  registry = new Registry();
  stop = new AbortController();
});
afterEach(async () => {
  stop.abort();
  await server.stop();
});

function driverOptions(backoff = { initialMs: 10, maxMs: 50, jitter: 0 }) {
  return { requestTimeoutMs: 2_000, backoff, metrics: createCdnMetrics(registry) };
}

async function metric(name: string, labels: Record<string, string> = {}): Promise<number> {
  const values = (await registry.getSingleMetric(name)?.get())?.values ?? [];
  return values
    .filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))
    .reduce((sum, v) => sum + v.value, 0);
}

const until = async (condition: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
};

describe('a rendered URL that does not parse', () => {
  // `{page_url}` as the whole URL: the row value is percent-encoded, so the "URL" has no scheme or host.
  const garbage = 'https%3A%2F%2Fex.com%2Fa';

  it('is a permanent error for the generic HTTP driver, not retried', async () => {
    const purger = new HttpPurger(CdnConfig.parse({ http: {} }).http!, driverOptions());
    await expect(purger.purge(targets({ urls: [garbage] }), { signal: stop.signal })).rejects.toMatchObject({
      retriable: false,
    });
    expect(server.requests).toHaveLength(0);
  });

  it('is a permanent error for Fastly (which would otherwise purge a meaningless path)', async () => {
    const purger = new FastlyPurger(
      CdnConfig.parse({ fastly: { serviceId: 'S1', apiToken: TOKEN, baseUrl: base } }).fastly!,
      driverOptions(),
    );
    await expect(purger.purge(targets({ urls: [garbage] }), { signal: stop.signal })).rejects.toMatchObject({
      retriable: false,
    });
    expect(server.requests).toHaveLength(0);
  });
});

describe('Retry-After that asks for no wait', () => {
  for (const [label, retryAfter] of [
    ['0', '0'],
    ['a date in the past', new Date(Date.now() - 3_600_000).toUTCString()],
  ] as const) {
    it(`Retry-After: ${label} is floored at the backoff: no busy loop`, async () => {
      tooManyRequestsFor(server, 1_500, retryAfter);
      const arrivals = recordArrivals(server);
      const purger = new CloudflarePurger(
        CdnConfig.parse({
          cloudflare: { zoneId: 'z', apiToken: TOKEN, baseUrl: base, plan: 'enterprise' },
        }).cloudflare!,
        driverOptions({ initialMs: 200, maxMs: 400, jitter: 0 }),
      );
      await purger.purge(targets({ tags: ['t'] }), { signal: stop.signal });
      // 200, 400, 400, … ms between attempts: at most 4 requests in any second (a busy loop sends hundreds).
      expect(peakPerSecond(arrivals)).toBeLessThanOrEqual(4);
      expect(server.succeeded).toHaveLength(1);
    });
  }
});

describe('a failed request among parallel ones', () => {
  it('aborts its siblings in flight, starts no new ones, and leaves nothing retrying behind', async () => {
    replyByPath(server, [
      [/\/bad$/, { status: 400, body: 'bad url' }],
      [/./, { status: 503, body: 'busy' }],
    ]);
    server.delayMs = 50;
    const purger = new HttpPurger(
      CdnConfig.parse({ http: { endpoint: base, concurrency: 3 } }).http!,
      driverOptions(),
    );
    const urls = [
      'https://ex.com/a',
      'https://ex.com/bad',
      'https://ex.com/c',
      'https://ex.com/d',
      'https://ex.com/e',
    ];
    await expect(purger.purge(targets({ urls }), { signal: stop.signal })).rejects.toMatchObject({
      retriable: false,
      status: 400,
    });
    const afterReject = server.requests.length;
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(server.requests.length).toBe(afterReject);
    expect(server.inFlight).toBe(0);
    // /d and /e were never started: the failure came first.
    expect(server.requests.map((r) => r.path)).not.toContain('/e');
  });
});

describe('the provider refuses the account', () => {
  const cloudflare = (probeMs: number) =>
    new CloudflarePurger(
      CdnConfig.parse({
        cloudflare: {
          zoneId: 'z',
          apiToken: TOKEN,
          baseUrl: base,
          plan: 'enterprise',
          circuitProbeIntervalMs: probeMs,
        },
      }).cloudflare!,
      driverOptions(),
    );

  it('401: the purge waits (does not fail), probes once per interval, sets the paused gauge, resumes on success', async () => {
    server.defaultReply = () => ({
      status: 401,
      body: '{"success":false,"errors":[{"code":10000,"message":"Authentication error"}]}',
    });
    const purger = cloudflare(300);
    let settled: 'pending' | 'resolved' | 'rejected' = 'pending';
    const purging = purger
      .purge(targets({ tags: ['a'], prefixes: ['https://ex.com/p/'] }), { signal: stop.signal })
      .then(
        () => (settled = 'resolved'),
        () => (settled = 'rejected'),
      );
    await until(async () => (await metric('walpurge_cdn_provider_paused', { provider: 'cloudflare' })) === 1);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(settled).toBe('pending');
    // Two calls tripped it together; then one probe per 300 ms: a handful, not a retry storm.
    expect(server.requests.length).toBeGreaterThanOrEqual(3);
    expect(server.requests.length).toBeLessThanOrEqual(7);
    server.defaultReply = () => ({ status: 200, body: '{"success":true,"errors":[]}' });
    await purging;
    expect(settled).toBe('resolved');
    expect(await metric('walpurge_cdn_provider_paused', { provider: 'cloudflare' })).toBe(0);
    expect(
      await metric('walpurge_cdn_api_calls_total', { provider: 'cloudflare', outcome: 'provider_refused' }),
    ).toBeGreaterThan(0);
    expect(server.succeeded.map((r) => Object.keys(JSON.parse(r.body) as object)[0]).sort()).toEqual([
      'prefixes',
      'tags',
    ]);
  });

  it('a 400 that blames the zone id pauses too (instead of dead-lettering every event)', async () => {
    server.failNext(
      {
        status: 400,
        body: '{"success":false,"errors":[{"code":7003,"message":"Could not route to /zones/z/purge_cache, perhaps your object identifier is invalid?"}]}',
      },
      2,
    );
    await cloudflare(200).purge(targets({ tags: ['a'] }), { signal: stop.signal });
    expect(server.requests).toHaveLength(3);
    expect(server.succeeded).toHaveLength(1);
    expect(await metric('walpurge_cdn_provider_paused', { provider: 'cloudflare' })).toBe(0);
  });

  it('an item-level 400 stays permanent, so the lane can isolate that event', async () => {
    server.failNext({
      status: 400,
      body: '{"success":false,"errors":[{"code":1012,"message":"Invalid url"}]}',
    });
    await expect(
      cloudflare(200).purge(targets({ urls: ['https://ex.com/x'] }), { signal: stop.signal }),
    ).rejects.toMatchObject({
      retriable: false,
      status: 400,
    });
    expect(await metric('walpurge_cdn_provider_paused', { provider: 'cloudflare' })).toBe(0);
  });

  it('a shutdown ends the pause', async () => {
    server.defaultReply = () => ({ status: 403, body: 'forbidden' });
    const purger = new FastlyPurger(
      CdnConfig.parse({
        fastly: { serviceId: 'S1', apiToken: TOKEN, baseUrl: base, circuitProbeIntervalMs: 60_000 },
      }).fastly!,
      driverOptions(),
    );
    const abort = new AbortController();
    const purging = purger.purge(targets({ tags: ['a'] }), { signal: abort.signal });
    await until(async () => (await metric('walpurge_cdn_provider_paused', { provider: 'fastly' })) === 1);
    abort.abort();
    await expect(purging).rejects.toThrow(/abort/i);
  });
});

describe('rate limits', () => {
  it('Cloudflare tag purges wait on the tag/prefix bucket and count the time throttled', async () => {
    const arrivals = recordArrivals(server);
    const purger = new CloudflarePurger(
      CdnConfig.parse({
        cloudflare: {
          zoneId: 'z',
          apiToken: TOKEN,
          baseUrl: base,
          maxItemsPerCall: 1,
          concurrency: 4,
          rateLimits: { tagPrefixRequests: { perSecond: 4, burst: 2 } },
        },
      }).cloudflare!,
      driverOptions(),
    );
    await purger.purge(targets({ tags: ['a', 'b', 'c', 'd'] }), { signal: stop.signal });
    expect(arrivals).toHaveLength(4);
    // Burst of 2 at once, then one per 250 ms: the 4th call comes ≥ 500 ms after the first.
    expect((arrivals[3] ?? 0) - (arrivals[0] ?? 0)).toBeGreaterThanOrEqual(450);
    expect(
      await metric('walpurge_cdn_throttled_seconds_total', { provider: 'cloudflare', reason: 'bucket' }),
    ).toBeGreaterThan(0.4);
    expect(await metric('walpurge_cdn_items_total', { provider: 'cloudflare', kind: 'tags' })).toBe(4);
  });

  it('Cloudflare URL purges are counted against the URL bucket (per URL), not the tag/prefix bucket', async () => {
    const purger = new CloudflarePurger(
      CdnConfig.parse({
        cloudflare: {
          zoneId: 'z',
          apiToken: TOKEN,
          baseUrl: base,
          rateLimits: {
            tagPrefixRequests: { perMinute: 1, burst: 1 },
            urls: { perSecond: 1000, burst: 1000 },
          },
        },
      }).cloudflare!,
      driverOptions(),
    );
    const urls = Array.from({ length: 250 }, (_, i) => `https://ex.com/${i}`);
    await purger.purge(targets({ urls, tags: ['t'] }), { signal: stop.signal });
    expect(await metric('walpurge_cdn_throttled_seconds_total', { provider: 'cloudflare' })).toBe(0);
    expect(
      await metric('walpurge_cdn_api_calls_total', {
        provider: 'cloudflare',
        kind: 'urls',
        outcome: 'success',
      }),
    ).toBe(3);
  });
});

describe('CloudFront invalidations in progress', () => {
  it('a batch waits while 15 wildcard paths are in progress, and goes once GetInvalidation reports one Completed', async () => {
    const api = cloudFrontApi(server);
    const purger = new CloudFrontPurger(
      CdnConfig.parse({
        cloudfront: {
          distributionId: 'D1',
          endpoint: base,
          accessKeyId: 'AKIDTEST',
          secretAccessKey: TOKEN,
          completionPollMs: 100,
        },
      }).cloudfront!,
      driverOptions(),
    );
    try {
      const prefixes = (from: number) => Array.from({ length: 10 }, (_, i) => `https://ex.com/p${from + i}/`);
      await purger.purge(targets({ prefixes: prefixes(0), urls: ['https://ex.com/a'] }), {
        signal: stop.signal,
      });
      let second = false;
      const purging = purger
        .purge(targets({ prefixes: prefixes(10) }), { signal: stop.signal })
        .then(() => (second = true));
      // 10 + 10 wildcard paths > 15: the second waits, polling the first, without creating anything.
      await until(() => server.requests.filter((r) => r.method === 'GET').length >= 2);
      expect(second).toBe(false);
      expect(api.created()).toBe(1);
      api.complete('I1');
      await purging;
      expect(api.created()).toBe(2);
      expect(await metric('walpurge_cdn_cloudfront_paths_total')).toBe(21);
      expect(
        await metric('walpurge_cdn_throttled_seconds_total', { provider: 'cloudfront', reason: 'in_flight' }),
      ).toBeGreaterThan(0);
      expect(await metric('walpurge_cdn_items_total', { provider: 'cloudfront', kind: 'paths' })).toBe(11);
      expect(await metric('walpurge_cdn_items_total', { provider: 'cloudfront', kind: 'prefixes' })).toBe(10);
    } finally {
      await purger.close();
    }
  });
});

/** Runs a purge that must settle on its own; a retry loop is cut after `ms` and shows as an abort. */
async function settlesWithin<T>(ms: number, run: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const cut = AbortSignal.any([stop.signal, AbortSignal.timeout(ms)]);
  return run(cut);
}

describe('a tag no HTTP header can carry (above U+00FF, NUL)', () => {
  it('Fastly purges a key outside printable ASCII alone, percent-encoded, and the others in the batch', async () => {
    const purger = new FastlyPurger(
      CdnConfig.parse({ fastly: { serviceId: 'S1', apiToken: TOKEN, baseUrl: base } }).fastly!,
      driverOptions(),
    );
    await settlesWithin(3_000, (signal) =>
      purger.purge(targets({ tags: ['pizza-🍕', 'plain', 'nul\0key'] }), { signal }),
    );
    expect(server.succeeded.map((r) => [r.path, r.headers['surrogate-key']]).sort()).toEqual([
      ['/service/S1/purge', 'plain'],
      ['/service/S1/purge/nul%00key', undefined],
      ['/service/S1/purge/pizza-%F0%9F%8D%95', undefined],
    ]);
  });

  it('generic HTTP sends a non-Latin-1 tag as its UTF-8 bytes (what the backend attached), with the others', async () => {
    const purger = new HttpPurger(
      CdnConfig.parse({ http: { endpoint: base, tagMethod: 'PURGE' } }).http!,
      driverOptions(),
    );
    await settlesWithin(3_000, (signal) =>
      purger.purge(targets({ tags: ['pizza-🍕', 'plain'] }), { signal }),
    );
    expect(server.succeeded).toHaveLength(1);
    const header = String(server.succeeded[0]?.headers['xkey']);
    // Node's HTTP server reads header bytes as Latin-1: decoding them as UTF-8 gives the tags back.
    expect(Buffer.from(header, 'latin1').toString('utf8')).toBe('pizza-🍕 plain');
  });

  it('generic HTTP refuses a NUL tag permanently, before sending: no retry loop, counted as rejected', async () => {
    const purger = new HttpPurger(
      CdnConfig.parse({ http: { endpoint: base, tagMethod: 'PURGE' } }).http!,
      driverOptions(),
    );
    await expect(
      settlesWithin(3_000, (signal) => purger.purge(targets({ tags: ['nul\0tag'] }), { signal })),
    ).rejects.toMatchObject({ retriable: false });
    expect(server.requests).toHaveLength(0);
    expect(await metric('walpurge_cdn_api_calls_total', { provider: 'http', outcome: 'rejected' })).toBe(1);
  });
});

describe('CloudFront: more wildcard paths in one purge than may be in progress', () => {
  it('20 prefixes go as invalidations of at most 15 wildcard paths each, and all succeed', async () => {
    const api = cloudFrontApi(server);
    const purger = new CloudFrontPurger(
      CdnConfig.parse({
        cloudfront: {
          distributionId: 'D1',
          endpoint: base,
          accessKeyId: 'AKIDTEST',
          secretAccessKey: TOKEN,
          completionPollMs: 100,
        },
      }).cloudfront!,
      driverOptions(),
    );
    try {
      const prefixes = Array.from({ length: 20 }, (_, i) => `https://ex.com/p${i}/`);
      const purging = settlesWithin(8_000, (signal) => purger.purge(targets({ prefixes }), { signal }));
      // The second invalidation can only start once the first is completed (15 in progress).
      const completer = until(() => api.created() >= 1, 7_000).then(() => api.complete('I1'));
      try {
        await purging;
      } finally {
        await completer.catch(() => {});
      }
      const posts = server.requests.filter((r) => r.method === 'POST');
      const wildcards = posts.map((r) => [...r.body.matchAll(/<Path>[^<]*\*<\/Path>/g)].length);
      expect(Math.max(...wildcards)).toBeLessThanOrEqual(15);
      expect(api.created()).toBeGreaterThanOrEqual(2);
      // Every CreateInvalidation was accepted: none was refused as too many in progress.
      expect(posts).toHaveLength(api.created());
      expect(await metric('walpurge_cdn_items_total', { provider: 'cloudfront', kind: 'prefixes' })).toBe(20);
    } finally {
      await purger.close();
    }
  });
});

describe('CloudFront without credentials', () => {
  const saved = { ...process.env };
  beforeEach(() => {
    for (const name of Object.keys(process.env)) if (name.startsWith('AWS_')) delete process.env[name];
    process.env['AWS_SHARED_CREDENTIALS_FILE'] = '/nonexistent';
    process.env['AWS_CONFIG_FILE'] = '/nonexistent';
    // No instance metadata service here: do not wait on its timeouts.
    process.env['AWS_EC2_METADATA_DISABLED'] = 'true';
  });
  afterEach(() => {
    for (const name of Object.keys(process.env)) if (name.startsWith('AWS_')) delete process.env[name];
    Object.assign(process.env, saved);
  });

  it('pauses the provider (gauge, one error log with a hint) instead of retrying forever', async () => {
    const logged: string[] = [];
    const purger = new CloudFrontPurger(
      CdnConfig.parse({
        cloudfront: { distributionId: 'D1', endpoint: base, circuitProbeIntervalMs: 200 },
      }).cloudfront!,
      {
        ...driverOptions(),
        logger: createLogger({ level: 'error', destination: { write: (line: string) => logged.push(line) } }),
      },
    );
    try {
      const purging = purger.purge(targets({ urls: ['https://ex.com/a'] }), { signal: stop.signal });
      const settled = purging.then(
        () => 'resolved',
        (error: unknown) => error,
      );
      await until(
        async () => (await metric('walpurge_cdn_provider_paused', { provider: 'cloudfront' })) === 1,
      );
      await new Promise((resolve) => setTimeout(resolve, 700));
      expect(server.requests).toHaveLength(0);
      expect(logged).toHaveLength(1);
      expect(logged[0]).toMatch(/credentials/i);
      expect(JSON.parse(logged[0] ?? '{}')).toMatchObject({
        msg: expect.stringMatching(/AWS_ACCESS_KEY_ID/),
      });
      expect(
        await metric('walpurge_cdn_api_calls_total', { provider: 'cloudfront', outcome: 'provider_refused' }),
      ).toBeGreaterThanOrEqual(2);
      stop.abort();
      expect(await settled).toMatchObject({ message: expect.stringMatching(/abort/i) });
    } finally {
      await purger.close();
    }
  });
});
