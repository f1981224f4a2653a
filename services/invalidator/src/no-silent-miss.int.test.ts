import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ConfigError, WalpurgeConfig, type WalpurgeConfigInput } from '@walpurge/config';
import { createMetricsRegistry } from '@walpurge/core';
import { uniqueName, waitFor } from '@walpurge/testing';
import { changeEvent, deleteKeys, logger, metricValue } from '../test/harness.js';
import { RecordingServer } from '../test/recording-server.js';
import { queueTableSql } from './cdn-lane/postgres-cdn-queue.js';
import { createInvalidator, type Invalidator } from './create-invalidator.js';

// What the daemon does when a change cannot name every stale entry: it purges wider (fallback,
// widened pattern or prefix) and counts it, or it refuses to start. Real Redis, a local stand-in
// for the Cloudflare API, the inline transport (the listener calls `handle`).
const services = inject('services');
let redis: Redis;
const prefixes: string[] = [];
const servers: RecordingServer[] = [];
/** CDN queue tables (inline transport: CDN purges wait in a table for their lane). */
const queueTables: string[] = [];

beforeAll(() => {
  redis = new Redis(services.redisUrl);
});
afterAll(async () => {
  for (const prefix of prefixes) await deleteKeys(redis, prefix);
  for (const server of servers) await server.stop();
  redis?.disconnect();
  const db = new pg.Client({ connectionString: services.databaseUrl });
  await db.connect();
  for (const table of queueTables) await db.query(`DROP TABLE IF EXISTS ${queueTableSql(table)}`);
  await db.end();
});

function inlineConfig(prefix: string, input: Partial<WalpurgeConfigInput>): WalpurgeConfig {
  return WalpurgeConfig.parse({
    redis: { url: services.redisUrl, keyPrefix: prefix },
    invalidator: { retryInitialMs: 20, retryMaxMs: 200 },
    ...input,
  });
}

async function startInline(input: Partial<WalpurgeConfigInput>) {
  const prefix = `${uniqueName('silent')}:`;
  prefixes.push(prefix.slice(0, -1));
  const registry = createMetricsRegistry({ defaultMetrics: false });
  const invalidator: Invalidator = createInvalidator({
    config: inlineConfig(prefix, input),
    logger,
    registry,
    consume: 'none',
    // The database section only holds the CDN queue table here; the rules' tables do not exist.
    validateSchema: false,
  });
  await invalidator.start(new AbortController().signal);
  return { invalidator, prefix, registry };
}

async function existing(prefix: string, keys: string[]): Promise<Record<string, number>> {
  const found = await Promise.all(keys.map((key) => redis.exists(prefix + key)));
  return Object.fromEntries(keys.map((key, i) => [key, found[i] ?? -1]));
}

describe('an update without the old value of a template column', () => {
  it('purges the fallback and counts the unknown value; without a fallback the miss is counted', async () => {
    const { invalidator, prefix, registry } = await startInline({
      rules: [
        {
          table: 'pages',
          name: 'pages',
          on: ['update'],
          redis: { keys: ['page_by_slug:{slug}'] },
          fallback: { redis: { patterns: ['page_by_slug:*'] } },
        },
        { table: 'posts', name: 'posts', on: ['update'], redis: { keys: ['post_by_slug:{slug}'] } },
      ],
    });
    try {
      const keys = ['page_by_slug:old', 'page_by_slug:new', 'post_by_slug:old', 'post_by_slug:new'];
      await redis.mset(...keys.flatMap((key) => [prefix + key, 'cached']));
      // REPLICA IDENTITY DEFAULT: the old row carries only the primary key, not the old slug.
      const rename = (table: string) =>
        changeEvent('u', table, { key: { id: 1 }, before: { id: 1 }, after: { id: 1, slug: 'new' } });
      await invalidator.handle([rename('pages'), rename('posts')]);
      expect(await existing(prefix, keys)).toEqual({
        'page_by_slug:old': 0,
        'page_by_slug:new': 0,
        'post_by_slug:old': 1,
        'post_by_slug:new': 0,
      });
      const unknown = (rule: string, fallback: string) =>
        metricValue(registry, 'walpurge_invalidator_unknown_values_total', {
          rule,
          reason: 'old-value-unavailable',
          fallback,
        });
      expect(await unknown('pages', 'true')).toBe(1);
      expect(await unknown('posts', 'false')).toBe(1);
    } finally {
      await invalidator.stop();
    }
  });
});

describe('truncate', () => {
  it('purges every Redis and CDN entry kind: widened to a pattern or prefix, or through the fallback', async () => {
    const cdn = new RecordingServer();
    servers.push(cdn);
    const baseUrl = await cdn.start();
    const cdnQueueTable = uniqueName('cdn_queue');
    queueTables.push(cdnQueueTable);
    const { invalidator, prefix } = await startInline({
      database: { url: services.databaseUrl, cdnQueueTable },
      cdn: { cloudflare: { zoneId: 'zone', apiToken: 'token', baseUrl }, coalesceWindowMs: 50 },
      rules: [
        {
          table: 'products',
          name: 'products',
          redis: { keys: ['p:{id}', '{sku}:detail'], patterns: ['p:{id}:*'], tags: ['cat-{category}'] },
          cdn: {
            urls: ['https://shop.test/p/{id}?v=1'],
            prefixes: ['https://shop.test/c/{category}/'],
            tags: ['prod-{id}'],
          },
          fallback: { redis: { patterns: ['*:detail'], tags: ['products'] }, cdn: { tags: ['products'] } },
        },
      ],
    });
    try {
      const purged = ['p:1', 'p:1:reviews', 'ABC:detail', 'list:all'];
      const survivors = ['other:1', 'list:7'];
      await redis.mset(...[...purged, ...survivors].flatMap((key) => [prefix + key, 'cached']));
      // The application tags every product list with `products` (the fallback) and `cat-<id>`.
      await redis.sadd(`${prefix}tag:products`, 'list:all');
      await redis.sadd(`${prefix}tag:cat-7`, 'list:7');
      await invalidator.handle([changeEvent('t', 'products', { key: null, before: null, after: null })]);
      expect(await existing(prefix, [...purged, ...survivors])).toEqual({
        ...Object.fromEntries(purged.map((key) => [key, 0])),
        ...Object.fromEntries(survivors.map((key) => [key, 1])),
      });
      // The CDN purges follow through their lane.
      await waitFor('the CDN purges', async () => cdn.succeeded.length >= 2, { timeoutMs: 15_000 });
      const bodies = cdn.requests.map((request) => JSON.parse(request.body) as Record<string, string[]>);
      expect(bodies.flatMap((body) => body['prefixes'] ?? []).sort()).toEqual([
        'shop.test/c/',
        'shop.test/p/',
      ]);
      expect(bodies.flatMap((body) => body['tags'] ?? [])).toEqual(['products']);
      expect(bodies.flatMap((body) => body['files'] ?? [])).toEqual([]);
    } finally {
      await invalidator.stop();
    }
  });

  const refused: Array<{ kind: string; input: Partial<WalpurgeConfigInput>; path: string }> = [
    {
      kind: 'Redis key starting with a value',
      input: { rules: [{ table: 't', redis: { keys: ['{sku}:detail'] } }] },
      path: 'rules[0].redis.keys[0]',
    },
    {
      kind: 'Redis tag',
      input: { rules: [{ table: 't', redis: { tags: ['cat-{category}'] } }] },
      path: 'rules[0].redis.tags[0]',
    },
    {
      kind: 'CDN tag',
      input: {
        cdn: { cloudflare: { zoneId: 'zone', apiToken: 'token' } },
        rules: [{ table: 't', cdn: { tags: ['prod-{id}'] } }],
      },
      path: 'rules[0].cdn.tags[0]',
    },
    {
      kind: 'CDN url, with a CDN that cannot purge prefixes',
      input: {
        cdn: { http: { endpoint: 'http://127.0.0.1:1' } },
        rules: [{ table: 't', cdn: { urls: ['https://shop.test/p/{id}'] } }],
      },
      path: 'rules[0].cdn.urls[0]',
    },
  ];
  it.each(refused)('start refuses a truncate it could not purge: $kind', async ({ input, path }) => {
    const prefix = `${uniqueName('refused')}:`;
    const invalidator = createInvalidator({
      config: inlineConfig(prefix, input),
      logger,
      registry: createMetricsRegistry({ defaultMetrics: false }),
      consume: 'none',
    });
    const error = await invalidator.start(new AbortController().signal).then(
      () => undefined,
      (thrown: unknown) => thrown,
    );
    await invalidator.stop();
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems;
    expect(problems.map((problem) => problem.path)).toEqual([path]);
    expect(problems[0]?.message).toContain('add a fallback without row values');
    expect(problems[0]?.message).toContain('or remove truncate from on');
  });

  it('starts when truncate is left out of on: the explicit choice', async () => {
    const { invalidator } = await startInline({
      rules: [{ table: 't', on: ['insert', 'update', 'delete'], redis: { tags: ['cat-{category}'] } }],
    });
    await invalidator.stop();
  });
});
