import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import pg from 'pg';
import { createCacheClient, type CacheClient } from '@walpurge/client';
import { parseConfigText } from '@walpurge/config';
import { createLogger } from '@walpurge/core';
import { NAMESPACE_BUMP_SCRIPT, namespaceKey, namespaceVersion } from '@walpurge/rules';
import { deleteRedisKeys, uniqueName } from '@walpurge/testing';
import { RecordingServer } from '../../../../services/invalidator/test/recording-server.js';
import { purgeAll } from './purge-all.js';
import { renderPurgeAllSummary } from './render-purge-all.js';

/** `purgeAll` against a real Redis and a recording CDN API (Cloudflare + a generic HTTP purger). */
const services = inject('services');
const prefix = `${uniqueName('purge_all')}:`;
const cloudflare = new RecordingServer();
const varnish = new RecordingServer();
let cache: Redis;
let configText: string;

const logger = createLogger({ level: 'silent', pretty: false });

beforeAll(async () => {
  cache = new Redis(services.redisUrl);
  const [cloudflareUrl, varnishUrl] = await Promise.all([cloudflare.start(), varnish.start()]);
  configText = `
redis:
  url: ${services.redisUrl}
  keyPrefix: '${prefix}'
cdn:
  cloudflare: { zoneId: z1, apiToken: t, baseUrl: '${cloudflareUrl}' }
  http: { endpoint: '${varnishUrl}' }
rules:
  - table: users
    redis:
      keys: ['user:{id}', 'user_by_email:{email}', 'config:site']
      patterns: ['posts:{id}:*']
      tags: ['user-{id}', 'everyone']
    cdn:
      urls: ['https://x.test/users/{id}', 'https://x.test/{slug}', 'https://x.test/home']
      tags: ['user-{id}', 'all-users']
      prefixes: ['https://x.test/p/{id}/']
  - table: orders
    redis:
      keys: ['{email}']
      patterns: ['*:{id}']
`;
});

afterAll(async () => {
  await deleteRedisKeys(cache, prefix);
  cache.disconnect();
  await Promise.all([cloudflare.stop(), varnish.stop()]);
});

const keep = ['other:1', 'users:1', 'cached:b', 'tag:other-1'];

beforeEach(async () => {
  await deleteRedisKeys(cache, prefix);
  cloudflare.requests.length = 0;
  varnish.requests.length = 0;
  const values = [
    'user:1',
    'user:2',
    'user_by_email:a@x.test',
    'config:site',
    'posts:1:page:2',
    'cached:a',
    'cached:e',
    'other:1',
    'users:1',
    'cached:b',
  ];
  for (const key of values) await cache.set(prefix + key, 'v');
  await cache.sadd(`${prefix}tag:user-1`, 'cached:a');
  await cache.sadd(`${prefix}tag:everyone`, 'cached:e');
  await cache.sadd(`${prefix}tag:other-1`, 'cached:b');
  // Outside the key prefix: never touched.
  await cache.set(`foreign:${prefix}user:1`, 'v');
});

async function remaining(): Promise<string[]> {
  const keys = await cache.keys(`${prefix}*`);
  return keys.map((key) => key.slice(prefix.length)).sort();
}

const config = () => parseConfigText(configText, 'walpurge.yaml', { env: {} }).config;

describe('purgeAll', () => {
  it('purges every literal-prefixed pattern, tag set and CDN prefix/tag, and reports the rest', async () => {
    const summary = await purgeAll({ config: config(), logger });
    expect(await remaining()).toEqual([...keep].sort());
    expect(await cache.exists(`foreign:${prefix}user:1`)).toBe(1);

    expect(summary.redis.patterns.map((p) => p.pattern).sort()).toEqual(
      ['posts:*:*', 'user:*', 'user_by_email:*'].sort(),
    );
    expect(summary.redis.keys).toEqual(['config:site']);
    expect(summary.redis.tags).toEqual(['everyone']);
    expect(summary.redis.tagPatterns).toEqual([{ pattern: 'user-*', tagSets: 1, sample: ['user-1'] }]);

    const bodies = cloudflare.requests.map((request) => JSON.parse(request.body) as unknown);
    expect(bodies).toEqual(
      expect.arrayContaining([
        { files: ['https://x.test/home'] },
        { tags: ['all-users'] },
        { prefixes: ['x.test/users/', 'x.test/p/'] },
      ]),
    );
    expect(bodies).toHaveLength(3);
    // The generic HTTP purger takes exact URLs only.
    expect(varnish.requests.map((request) => request.path)).toEqual(['/home']);

    const refused = summary.unpurgeable.map((item) => `${item.path}${item.target ? `@${item.target}` : ''}`);
    expect(refused.sort()).toEqual(
      [
        'rules[0].cdn.urls[1]', // https://x.test/{slug}: the host's root
        'rules[0].cdn.tags[0]', // templated CDN tag: cannot be enumerated
        'rules[1].redis.keys[0]', // {email}: no literal start
        'rules[1].redis.patterns[0]', // *:{id}: starts with a wildcard
        'rules[0].cdn.urls[0]@http', // needs a prefix purge, which http cannot do
        'rules[0].cdn.prefixes[0]@http',
        'rules[0].cdn.tags[1]@http', // http without tagMethod cannot purge tags
      ].sort(),
    );
    expect(summary.complete).toBe(false);
    const text = renderPurgeAllSummary(summary, prefix);
    expect(text).toContain('NOT PURGED: 7 template(s)');
    expect(text).toContain('rules[1].redis.keys[0] "{email}" (rule rules[1] public.orders)');
  });

  it('a dry run counts and samples, and touches nothing', async () => {
    const before = await remaining();
    const summary = await purgeAll({ config: config(), logger, dryRun: true });
    expect(await remaining()).toEqual(before);
    expect(cloudflare.requests).toHaveLength(0);
    expect(varnish.requests).toHaveLength(0);
    const byPattern = Object.fromEntries(summary.redis.patterns.map((p) => [p.pattern, p.matched]));
    expect(byPattern).toEqual({ 'user:*': 2, 'user_by_email:*': 1, 'posts:*:*': 1 });
    expect(summary.redis.tagPatterns[0]?.tagSets).toBe(1);
    expect(renderPurgeAllSummary(summary)).toContain('dry run, nothing touched');
  });

  it('is complete when every template starts with literal text and every target can take it', async () => {
    const { config: plain } = parseConfigText(
      `redis: { url: '${services.redisUrl}', keyPrefix: '${prefix}' }
rules:
  - table: users
    redis: { keys: ['user:{id}'], tags: ['user-{id}'] }
`,
      'walpurge.yaml',
      { env: {} },
    );
    const summary = await purgeAll({ config: plain, logger });
    expect(summary.unpurgeable).toEqual([]);
    expect(summary.complete).toBe(true);
    expect(await cache.exists(`${prefix}user:1`, `${prefix}cached:a`)).toBe(0);
  });

  it('says which Redis it cannot reach', async () => {
    const { config: unreachable } = parseConfigText(
      `redis: { url: 'redis://127.0.0.1:1' }
rules: [{ table: users, redis: { keys: ['user:{id}'] } }]
`,
      'walpurge.yaml',
      { env: {} },
    );
    await expect(purgeAll({ config: unreachable, logger })).rejects.toThrow(
      /cannot reach the cache Redis at 127\.0\.0\.1:1: connection refused/,
    );
  });
});

/**
 * Namespaces: entries read through @walpurge/client under namespace versions, then purge --all
 * gives every version a fresh value (no WAL position: versions may be ahead of this server's).
 */
describe('purgeAll with namespaces', () => {
  const nsPrefix = `${uniqueName('purge_all_ns')}:`;
  const rules = `rules:
  - table: users
    redis: { namespaces: ['user:{id}', 'catalog'] }
`;
  const redisSection = `redis: { url: '${services.redisUrl}', keyPrefix: '${nsPrefix}' }\n`;
  const withDatabase = () =>
    parseConfigText(
      `database: { url: '${services.databaseUrl}', slot: s, publication: p }\n${redisSection}${rules}`,
      'walpurge.yaml',
      { env: {} },
    ).config;
  let client: CacheClient;
  let db: pg.Client;

  beforeAll(async () => {
    client = createCacheClient({ redis: cache, keyPrefix: nsPrefix, earlyRefreshBeta: 0 });
    db = new pg.Client({ connectionString: services.databaseUrl });
    await db.connect();
  });
  afterAll(async () => {
    await deleteRedisKeys(cache, nsPrefix);
    await client.close();
    await db.end();
  });

  const versionOf = (namespace: string) => cache.get(namespaceKey(nsPrefix, namespace));
  const versions = async () =>
    Object.fromEntries(
      await Promise.all(
        ['user:1', 'user:2', 'catalog', 'other:1'].map(async (ns) => [ns, await versionOf(ns)] as const),
      ),
    );

  /** Caches one entry per namespace; returns how many loads each later read costs. */
  async function cacheEntries(): Promise<() => Promise<number>> {
    let loads = 0;
    const loader = async () => ((loads += 1), 'v');
    const read = async () => {
      const before = loads;
      await client.get('profile:1', loader, { ttl: 600, namespaces: ['user:1'] });
      await client.get('profile:2', loader, { ttl: 600, namespaces: ['user:2'] });
      await client.get('home', loader, { ttl: 600, namespaces: ['catalog'] });
      await client.get('foreign', loader, { ttl: 600, namespaces: ['other:1'] });
      return loads - before;
    };
    expect(await read()).toBe(4);
    expect(await read()).toBe(0); // cached under the current versions
    return read;
  }

  beforeEach(async () => {
    await deleteRedisKeys(cache, nsPrefix);
    // user:1 was bumped by a change, to an LSN above anything this server has written (as after a
    // restore); the others start with a reader's random epoch.
    await cache.set(namespaceKey(nsPrefix, 'user:1'), `rOld:${'f'.repeat(16)}`);
  });

  it('gives every version a fresh value: entries are unreachable, and a replay cannot bring them back', async () => {
    const read = await cacheEntries();
    const before = await versions();
    const summary = await purgeAll({ config: withDatabase(), logger });

    expect(summary.unpurgeable).toEqual([]);
    expect(summary.complete).toBe(true);
    const bumps = summary.redis.namespaces;
    expect(bumps.exact).toEqual(['catalog']);
    expect(bumps.patterns).toEqual([
      { pattern: 'user:*', versions: 2, sample: expect.arrayContaining(['user:1', 'user:2']) },
    ]);
    expect(bumps.bumped).toBe(3);
    const after = await versions();
    for (const namespace of ['user:1', 'user:2', 'catalog']) {
      expect(after[namespace], namespace).toMatch(/^r[\w-]+\.\d+:0{16}$/);
      expect(after[namespace], namespace).not.toBe(before[namespace]);
    }
    expect(after['other:1']).toBe(before['other:1']); // no rule derives it
    expect(await read()).toBe(3); // every namespaced entry but other:1's is reloaded

    // The version held an LSN above this server's WAL (beforeEach): the purge reset it to LSN 0, so
    // the invalidator's next change moves it again instead of being skipped as "already newer".
    expect(
      await cache.eval(
        NAMESPACE_BUMP_SCRIPT,
        1,
        namespaceKey(nsPrefix, 'user:1'),
        namespaceVersion('0/10'),
        'rNext',
      ),
    ).toBe(1);
    expect(await read()).toBe(1);
    expect(renderPurgeAllSummary(summary)).toContain('3 namespace version(s) given a fresh value');
  });

  it('a dry run counts and samples the version keys and bumps nothing', async () => {
    const read = await cacheEntries();
    const before = await versions();
    const summary = await purgeAll({ config: withDatabase(), logger, dryRun: true });
    expect(await versions()).toEqual(before);
    expect(await read()).toBe(0);
    expect(summary.redis.namespaces.bumped).toBe(0);
    expect(summary.redis.namespaces.patterns).toEqual([
      { pattern: 'user:*', versions: 2, sample: expect.arrayContaining(['user:1', 'user:2']) },
    ]);
    expect(renderPurgeAllSummary(summary)).toMatch(/redis namespaces\s+user:\*: 2 version key\(s\) found/);
  });

  it('needs no database section: the fresh value is not a WAL position', async () => {
    const read = await cacheEntries();
    const { config: noDatabase } = parseConfigText(`${redisSection}${rules}`, 'walpurge.yaml', { env: {} });
    const summary = await purgeAll({ config: noDatabase, logger });
    expect(summary.complete).toBe(true);
    expect(summary.redis.namespaces.bumped).toBe(3);
    expect(await read()).toBe(3);
  });
});
