import { Redis } from 'ioredis';
import type { Admin, Kafka } from 'kafkajs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { RedisConfig, WalpurgeConfig, connectRedis, type WalpurgeConfigInput } from '@walpurge/config';
import { createMetricsRegistry } from '@walpurge/core';
import { uniqueName, waitFor } from '@walpurge/testing';
import {
  changeEvent,
  committedOffsets,
  connectProducer,
  deleteKeys,
  endOffsets,
  invalidatorConfig,
  kafkaClient,
  logger,
  metricValue,
  readTopic,
  startInvalidator,
  uniqueNames,
  waitForAllCommitted,
} from '../../test/harness.js';
import { RecordingServer } from '../../test/recording-server.js';
import { TcpProxy } from '../../test/tcp-proxy.js';
import { createInvalidator, type Invalidator } from '../create-invalidator.js';
import { deadLetterHeaders } from '../kafka/dead-letter.js';
import { RedisPurger } from '../targets/redis/redis-purger.js';
import { queueTableSql } from './postgres-cdn-queue.js';

/**
 * The CDN lane on real Kafka, PostgreSQL and Redis; the CDN is a local HTTP server that can answer
 * 429 + Retry-After for a while (an account over its API rate limit) or refuse one URL for good.
 */
const services = inject('services');

let kafka: Kafka;
let admin: Admin;
let redis: Redis;
let db: pg.Client;
const topics: string[] = [];
const prefixes: string[] = [];
const tables: string[] = [];
const servers: RecordingServer[] = [];

beforeAll(async () => {
  kafka = kafkaClient(services);
  admin = kafka.admin();
  await admin.connect();
  redis = new Redis(services.redisUrl);
  db = new pg.Client({ connectionString: services.databaseUrl });
  await db.connect();
});
afterAll(async () => {
  await admin?.deleteTopics({ topics }).catch(() => undefined);
  for (const prefix of prefixes) await deleteKeys(redis, prefix);
  for (const table of tables) await db?.query(`DROP TABLE IF EXISTS ${queueTableSql(table)}`);
  for (const server of servers) await server.stop();
  await admin?.disconnect();
  await db?.end();
  redis?.disconnect();
});

const itemRule = {
  table: 'items',
  on: ['insert', 'update', 'delete'] as Array<'insert' | 'update' | 'delete'>,
  oldValues: 'ignore-missing' as const,
  redis: { keys: ['item:{id}'], tags: ['item-{id}'] },
  cdn: { urls: ['https://cdn.test/items/{id}'] },
};
const item = (id: number | string, v = 0) =>
  changeEvent('u', 'items', { key: { id }, before: null, after: { id, v } });

async function startCdn(): Promise<{ cdn: RecordingServer; endpoint: string }> {
  const cdn = new RecordingServer();
  servers.push(cdn);
  cdn.defaultReply = (request) =>
    request.path.includes('/bad')
      ? { status: 400, body: 'malformed purge request' }
      : { status: 200, body: '' };
  return { cdn, endpoint: await cdn.start() };
}

/** Paths the CDN purged successfully, each once. */
const purgedPaths = (cdn: RecordingServer): string[] => [...new Set(cdn.succeeded.map((r) => r.path))].sort();

async function countExisting(keys: string[]): Promise<number> {
  return keys.length === 0 ? 0 : redis.exists(...keys);
}

/** The invalidator as the inline transport runs it (the listener calls `handle`), with its CDN queue table. */
async function startInline(
  endpoint: string,
  input: Partial<WalpurgeConfigInput> = {},
  extra: { purgers?: RedisPurger[]; runCdnLane?: boolean; table?: string } = {},
): Promise<{
  invalidator: Invalidator;
  prefix: string;
  table: string;
  registry: ReturnType<typeof createMetricsRegistry>;
}> {
  const prefix = `${uniqueName('lane')}:`;
  prefixes.push(prefix);
  const table = extra.table ?? uniqueName('cdn_queue');
  tables.push(table);
  const registry = createMetricsRegistry({ defaultMetrics: false });
  const { cdn, invalidator: invalidatorSection, database, ...rest } = input;
  const config = WalpurgeConfig.parse({
    database: { url: services.databaseUrl, cdnQueueTable: table, ...database },
    redis: { url: services.redisUrl, keyPrefix: prefix },
    cdn: { http: { endpoint, concurrency: 2 }, coalesceWindowMs: 100, ...cdn },
    invalidator: { retryInitialMs: 20, retryMaxMs: 200, ...invalidatorSection },
    rules: [itemRule],
    ...rest,
  });
  const invalidator = createInvalidator({
    config,
    logger,
    registry,
    consume: 'none',
    validateSchema: false,
    ...(extra.purgers ? { purgers: extra.purgers } : {}),
    ...(extra.runCdnLane === undefined ? {} : { runCdnLane: extra.runCdnLane }),
  });
  await invalidator.start(new AbortController().signal);
  return { invalidator, prefix, table, registry };
}

async function queueRows(table: string): Promise<number> {
  const { rows } = await db.query<{ n: string }>(`SELECT count(*) AS n FROM ${queueTableSql(table)}`);
  return Number(rows[0]?.n);
}

describe('the CDN lane, inline transport', () => {
  it('a CDN answering 429 holds neither the Redis purges nor handle() (the LSN); every CDN purge arrives once it recovers', async () => {
    const { cdn, endpoint } = await startCdn();
    const { invalidator, prefix, table, registry } = await startInline(endpoint);
    const ids = Array.from({ length: 10 }, (_, i) => i);
    const keys = ids.map((id) => `${prefix}item:${id}`);
    try {
      cdn.throttle(15_000, 1);
      for (const id of ids) {
        await redis.set(`${prefix}item:${id}`, 'stale');
        // Each call is one commit of the listener: it must resolve (LSN acknowledged) while the CDN throttles.
        await invalidator.handle([item(id)]);
      }
      expect(cdn.throttled, 'handle() waited for the throttled CDN').toBe(true);
      expect(await countExisting(keys)).toBe(0);
      expect(await queueRows(table)).toBe(ids.length);
      await waitFor('the lane to meet the 429', async () => cdn.requests.length > 0, { timeoutMs: 10_000 });
      expect(cdn.succeeded).toHaveLength(0);
      await waitFor(
        'the age gauge to show the lane is behind',
        async () =>
          (await metricValue(registry, 'walpurge_cdn_queue_oldest_age_seconds', { provider: 'http' })) > 0 &&
          (await metricValue(registry, 'walpurge_cdn_queue_depth', { provider: 'http' })) === ids.length,
        { timeoutMs: 10_000 },
      );
      expect(invalidator.isReady(), 'a throttled CDN must not take the pod out').toBe(true);

      cdn.unthrottle();
      await waitFor('every CDN purge after the CDN recovered', async () => (await queueRows(table)) === 0, {
        timeoutMs: 30_000,
      });
      expect(purgedPaths(cdn)).toEqual(ids.map((id) => `/items/${id}`).sort());
      expect(
        await metricValue(registry, 'walpurge_cdn_lane_entries_total', {
          provider: 'http',
          outcome: 'purged',
        }),
      ).toBe(ids.length);
      await waitFor(
        'the gauges back to 0',
        async () =>
          (await metricValue(registry, 'walpurge_cdn_queue_oldest_age_seconds', { provider: 'http' })) ===
            0 && (await metricValue(registry, 'walpurge_cdn_queue_depth', { provider: 'http' })) === 0,
        { timeoutMs: 10_000 },
      );
    } finally {
      await invalidator.stop();
    }
  });

  it('a graceful stop while the CDN throttles abandons the call in flight: its rows stay queued for the next start', async () => {
    const { cdn, endpoint } = await startCdn();
    const { invalidator, table } = await startInline(endpoint, { invalidator: { stopTimeoutMs: 1_000 } });
    cdn.throttle(60_000, 30);
    try {
      await invalidator.handle([item(1), item(2)]);
      await waitFor('the lane to meet the 429', async () => cdn.requests.length > 0, { timeoutMs: 10_000 });
    } finally {
      // Retry-After 30 s: only the stop deadline ends the call.
      await invalidator.stop();
    }
    expect(await queueRows(table)).toBe(2);
    cdn.unthrottle();
  });

  it('runCdnLane false only enqueues; of two processes running lanes on one table, one purges each row once, the other takes over when it stops', async () => {
    const { cdn, endpoint } = await startCdn();
    const producer = await startInline(endpoint, {}, { runCdnLane: false });
    const { table } = producer;
    const first = await startInline(endpoint, {}, { table });
    const second = await startInline(endpoint, {}, { table });
    try {
      const paths = (ids: number[]) => ids.map((id) => `/items/${id}`).sort();
      const early = Array.from({ length: 20 }, (_, i) => i);
      for (const id of early) await producer.invalidator.handle([item(id)]);
      await waitFor('the queue to drain', async () => (await queueRows(table)) === 0, { timeoutMs: 30_000 });
      // Exactly once each: the standby's lane did not purge the same rows.
      expect(cdn.succeeded.map((request) => request.path).sort()).toEqual(paths(early));
      const purgedBy = async (running: { registry: ReturnType<typeof createMetricsRegistry> }) =>
        metricValue(running.registry, 'walpurge_cdn_lane_entries_total', {
          provider: 'http',
          outcome: 'purged',
        });
      const [byFirst, bySecond] = [await purgedBy(first), await purgedBy(second)];
      expect([byFirst, bySecond].sort()).toEqual([0, early.length]);

      await (byFirst > 0 ? first : second).invalidator.stop();
      const late = [100, 101, 102];
      for (const id of late) await producer.invalidator.handle([item(id)]);
      await waitFor('the other lane to take over', async () => (await queueRows(table)) === 0, {
        timeoutMs: 30_000,
      });
      expect(purgedPaths(cdn)).toEqual(paths([...early, ...late]));
    } finally {
      await producer.invalidator.stop();
      await first.invalidator.stop();
      await second.invalidator.stop();
    }
  });

  it('coalesces: 50 updates of one row within the window cost one or a few CDN calls, not 50', async () => {
    const { cdn, endpoint } = await startCdn();
    const { invalidator, table } = await startInline(endpoint, { cdn: { coalesceWindowMs: 2_000 } });
    try {
      for (let v = 0; v < 50; v += 1) await invalidator.handle([item(1, v)]);
      await waitFor('the queue to drain', async () => (await queueRows(table)) === 0, { timeoutMs: 30_000 });
      const calls = cdn.requests.filter((request) => request.path === '/items/1').length;
      expect(calls).toBeGreaterThanOrEqual(1);
      expect(calls).toBeLessThanOrEqual(3);
    } finally {
      await invalidator.stop();
    }
  });

  it('a CDN refusing one event for good: that event is dead-lettered (cdn-rejected), the others are purged', async () => {
    const { cdn, endpoint } = await startCdn();
    // A dead-letter table of its own, so the row checked is this test's and is dropped afterwards.
    const deadLetterTable = uniqueName('cdn_dead_letters');
    tables.push(deadLetterTable);
    const { invalidator, table, registry } = await startInline(endpoint, {
      database: { url: services.databaseUrl, deadLetterTable },
      cdn: { coalesceWindowMs: 500 },
    });
    try {
      // One handle() so the three are one coalesced call, refused as a whole, then bisected.
      await invalidator.handle([item(100), item('bad'), item(101)]);
      await waitFor('the queue to drain', async () => (await queueRows(table)) === 0, { timeoutMs: 30_000 });
      expect(purgedPaths(cdn)).toEqual(['/items/100', '/items/101']);
      expect(
        await metricValue(registry, 'walpurge_cdn_lane_entries_total', {
          provider: 'http',
          outcome: 'dead_lettered',
        }),
      ).toBe(1);
      expect(
        await metricValue(registry, 'walpurge_cdn_lane_entries_total', {
          provider: 'http',
          outcome: 'purged',
        }),
      ).toBe(2);
      // Inline mode's dead-letter store: a row of database.deadLetterTable, counted as a rejected event.
      expect(
        await metricValue(registry, 'walpurge_invalidator_rejected_events_total', { transport: 'inline' }),
      ).toBe(1);
      const { rows } = await db.query<{ cause: string; target: string; event: unknown }>(
        `SELECT cause, target, event FROM ${queueTableSql(deadLetterTable)}`,
      );
      expect(rows.map(({ cause, target }) => ({ cause, target }))).toEqual([
        { cause: 'cdn-rejected', target: 'http' },
      ]);
      expect(JSON.stringify(rows[0]?.event)).toContain('"bad"');
    } finally {
      await invalidator.stop();
    }
  });

  it('WRONGTYPE at Redis: the event is rejected there, and its CDN purge is still sent', async () => {
    const { cdn, endpoint } = await startCdn();
    const { invalidator, prefix, registry } = await startInline(endpoint);
    try {
      await redis.set(`${prefix}item:7`, 'stale');
      await redis.set(`${prefix}tag:item-7`, 'not a set');
      await invalidator.handle([item(7)]);
      expect(await redis.exists(`${prefix}item:7`)).toBe(0);
      expect(
        await metricValue(registry, 'walpurge_invalidator_rejected_events_total', { transport: 'inline' }),
      ).toBe(1);
      await waitFor('the CDN purge of the rejected event', async () => purgedPaths(cdn).length === 1, {
        timeoutMs: 15_000,
      });
      expect(purgedPaths(cdn)).toEqual(['/items/7']);
    } finally {
      await invalidator.stop();
    }
  });

  it('a purger failing for good stops its parallel siblings: no retries go on after handle() settled', async () => {
    const { endpoint } = await startCdn();
    const target = new URL(services.redisUrl);
    const proxy = new TcpProxy(target.hostname, Number(target.port));
    await proxy.start();
    const prefix = `${uniqueName('sibling')}:`;
    prefixes.push(prefix);
    const redisOptions = { keyPrefix: prefix, batchSize: 100, scanCount: 100 };
    const reachable = new RedisPurger(
      connectRedis(RedisConfig.parse({ url: services.redisUrl, keyPrefix: prefix }), logger),
      redisOptions,
    );
    const unreachable = new RedisPurger(
      connectRedis(RedisConfig.parse({ url: `redis://127.0.0.1:${proxy.port}`, keyPrefix: prefix }), logger),
      redisOptions,
    );
    const { invalidator, registry } = await startInline(endpoint, {}, { purgers: [reachable, unreachable] });
    try {
      await proxy.stop();
      await redis.set(`${prefix}tag:item-3`, 'not a set');
      const retries = () =>
        metricValue(registry, 'walpurge_invalidator_purge_retries_total', { target: 'redis' });
      await invalidator.handle([item(3)]);
      const settled = await retries();
      await new Promise((done) => setTimeout(done, 1_500));
      expect(await retries(), 'the unreachable Redis was still retried after handle() settled').toBe(settled);
    } finally {
      await invalidator.stop();
      await proxy.stop();
    }
  });
});

describe('the CDN lane, kafka transport', () => {
  it('a CDN answering 429: Redis purges and offsets go on; every CDN purge arrives once it recovers; a refused one is dead-lettered', async () => {
    const names = uniqueNames('lane_kafka');
    topics.push(names.topic, names.deadLetterTopic, names.cdnTopic);
    prefixes.push(names.prefix);
    const { cdn, endpoint } = await startCdn();
    const running = await startInvalidator(
      invalidatorConfig(services, names, {
        cdn: { http: { endpoint, concurrency: 2 }, coalesceWindowMs: 200 },
        rules: [itemRule],
      }),
    );
    const producer = await connectProducer(kafka);
    const ids = Array.from({ length: 20 }, (_, i) => i);
    const keys = ids.map((id) => `${names.prefix}item:${id}`);
    try {
      cdn.throttle(20_000, 1);
      await redis.mset(...keys.flatMap((key) => [key, 'stale']));
      await producer.sendEvents(
        names.topic,
        ids.map((id) => item(id)),
      );
      await waitForAllCommitted(admin, names.group, names.topic, 15_000);
      await waitFor('the lane to meet the 429', async () => cdn.requests.length > 0, { timeoutMs: 15_000 });
      expect(cdn.throttled, 'the offsets waited for the throttled CDN').toBe(true);
      expect(await countExisting(keys)).toBe(0);
      expect(cdn.succeeded).toHaveLength(0);
      expect((await endOffsets(admin, names.cdnTopic)).reduce((a, b) => a + b, 0)).toBe(ids.length);
      expect(running.invalidator.isReady()).toBe(true);

      cdn.unthrottle();
      await waitFor(
        'every CDN purge after the CDN recovered',
        async () => purgedPaths(cdn).length === ids.length,
        { timeoutMs: 30_000 },
      );
      expect(purgedPaths(cdn)).toEqual(ids.map((id) => `/items/${id}`).sort());

      await producer.sendEvents(names.topic, [item(100), item('bad'), item(101)]);
      const dlq = await readTopic(kafka, names.deadLetterTopic);
      try {
        await expect.poll(() => dlq.messages.length, { timeout: 30_000 }).toBe(1);
      } finally {
        await dlq.stop();
      }
      const [dead] = dlq.messages;
      expect(JSON.parse(dead?.value ?? '{}')).toMatchObject({ after: { id: 'bad' } });
      expect(dead?.headers[deadLetterHeaders.reason]).toBe('cdn-rejected');
      expect(dead?.headers[deadLetterHeaders.topic]).toBe(names.cdnTopic);
      await waitFor('the others purged', async () => purgedPaths(cdn).includes('/items/101'), {
        timeoutMs: 15_000,
      });
      expect(purgedPaths(cdn)).toContain('/items/100');
      expect(
        await metricValue(running.registry, 'walpurge_cdn_lane_entries_total', {
          provider: 'http',
          outcome: 'dead_lettered',
        }),
      ).toBe(1);
      expect(
        await metricValue(running.registry, 'walpurge_invalidator_rejected_events_total', {
          transport: 'kafka',
        }),
      ).toBe(1);
      expect(await committedOffsets(admin, `${names.group}-cdn-http`, names.cdnTopic)).toEqual([
        ids.length + 3,
      ]);
    } finally {
      await producer.producer.disconnect();
      await running.stop();
    }
  });
});

describe('the CDN lane, kafka transport, gaps', () => {
  it('CDN purges removed from the CDN topic before the lane read them (a finite retention) are counted and logged', async () => {
    const names = uniqueNames('lane_gap');
    topics.push(names.topic, names.deadLetterTopic, names.cdnTopic);
    prefixes.push(names.prefix);
    const { cdn, endpoint } = await startCdn();
    const running = await startInvalidator(
      invalidatorConfig(services, names, {
        cdn: { http: { endpoint, concurrency: 2 }, coalesceWindowMs: 200 },
        rules: [itemRule],
      }),
    );
    const producer = await connectProducer(kafka);
    const cdnTotal = async () => (await endOffsets(admin, names.cdnTopic)).reduce((a, b) => a + b, 0);
    try {
      cdn.throttle(60_000, 1);
      await producer.sendEvents(
        names.topic,
        [0, 1, 2, 3, 4].map((id) => item(id)),
      );
      await waitFor('the lane to meet the 429', async () => cdn.requests.length > 0, { timeoutMs: 15_000 });
      await producer.sendEvents(
        names.topic,
        [5, 6, 7, 8, 9, 10, 11, 12, 13, 14].map((id) => item(id)),
      );
      await expect.poll(cdnTotal, { timeout: 15_000 }).toBe(15);
      // What a finite retention does while the provider is down: the oldest entries go, read or not.
      await expect
        .poll(
          () =>
            admin
              .deleteTopicRecords({ topic: names.cdnTopic, partitions: [{ partition: 0, offset: '10' }] })
              .then(() => true)
              .catch(() => false),
          { timeout: 20_000, interval: 500 },
        )
        .toBe(true);
      cdn.unthrottle();
      // Every entry is either purged or counted lost: the batch in flight when the entries expired
      // was purged, what followed it up to offset 10 never will be, the last 5 were purged.
      const lost = () =>
        metricValue(running.registry, 'walpurge_invalidator_lost_changes_total', { topic: names.cdnTopic });
      await expect
        .poll(async () => purgedPaths(cdn).length + (await lost()), { timeout: 30_000, interval: 200 })
        .toBe(15);
      expect(await lost()).toBeGreaterThanOrEqual(5);
      expect(
        await metricValue(running.registry, 'walpurge_invalidator_change_log_gaps_total', {
          topic: names.cdnTopic,
          reason: 'removed',
        }),
      ).toBe(1);
      // The change topic lost nothing.
      expect(
        await metricValue(running.registry, 'walpurge_invalidator_change_log_gaps_total', {
          topic: names.topic,
        }),
      ).toBe(0);
    } finally {
      await producer.producer.disconnect();
      await running.stop();
    }
  });
});

describe('the CDN lane, kafka transport, gauges', () => {
  it('a lane that never gets to fetch (another member holds the CDN partition) still reports depth and age', async () => {
    const names = uniqueNames('lane_gauge');
    topics.push(names.topic, names.deadLetterTopic, names.cdnTopic);
    prefixes.push(names.prefix);
    const { cdn, endpoint } = await startCdn();
    const config = invalidatorConfig(services, names, {
      kafka: { brokers: services.kafkaBrokers, clientId: 'walpurge-lane-gauge' },
      cdn: { http: { endpoint, concurrency: 2 }, coalesceWindowMs: 50 },
      rules: [itemRule],
    });
    await admin.createTopics({ topics: [{ topic: names.cdnTopic, numPartitions: 1 }], waitForLeaders: true });
    // A member of the lane's group whose id sorts first: the round-robin assignor gives it the one
    // partition, and it never fetches or commits (as a lane whose consumer cannot run).
    const rival = kafkaClient(services).consumer({
      groupId: `${names.group}-cdn-http`,
      sessionTimeout: 6_000,
    });
    const producer = await connectProducer(kafka);
    let running: Awaited<ReturnType<typeof startInvalidator>> | undefined;
    try {
      await rival.connect();
      await rival.subscribe({ topic: names.cdnTopic, fromBeginning: true });
      await rival.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        eachBatch: () => new Promise(() => {}),
      });
      rival.pause([{ topic: names.cdnTopic }]);
      running = await startInvalidator(config);
      await producer.sendEvents(
        names.topic,
        [1, 2, 3, 4, 5].map((id) => item(id)),
      );
      await waitForAllCommitted(admin, names.group, names.topic, 15_000);
      const registry = running.registry;
      await waitFor(
        'the depth gauge of the lane that cannot fetch',
        async () => (await metricValue(registry, 'walpurge_cdn_queue_depth', { provider: 'http' })) === 5,
        { timeoutMs: 30_000 },
      );
      await waitFor(
        'the age gauge of the lane that cannot fetch',
        async () =>
          (await metricValue(registry, 'walpurge_cdn_queue_oldest_age_seconds', { provider: 'http' })) > 0,
        { timeoutMs: 30_000 },
      );
      expect(cdn.requests, 'the lane never fetched').toHaveLength(0);
    } finally {
      await producer.producer.disconnect();
      await running?.stop();
      await rival.disconnect();
    }
  });
});

describe('the CDN lane, kafka transport, undecodable entries', () => {
  it('a CDN topic record that is not a change event goes to the dead-letter topic (reason undecodable); the lane goes on', async () => {
    const names = uniqueNames('lane_undecodable');
    topics.push(names.topic, names.deadLetterTopic, names.cdnTopic);
    prefixes.push(names.prefix);
    const { cdn, endpoint } = await startCdn();
    const running = await startInvalidator(
      invalidatorConfig(services, names, {
        cdn: { http: { endpoint, concurrency: 2 }, coalesceWindowMs: 50 },
        rules: [itemRule],
      }),
    );
    const producer = await connectProducer(kafka);
    try {
      await producer.sendRaw(names.cdnTopic, [{ key: 'k', value: 'not a change event' }]);
      await producer.sendEvents(names.cdnTopic, [item(7)]);
      await waitFor('the event after it purged', async () => purgedPaths(cdn).includes('/items/7'), {
        timeoutMs: 20_000,
      });
      const dlq = await readTopic(kafka, names.deadLetterTopic);
      try {
        await expect.poll(() => dlq.messages.length, { timeout: 20_000 }).toBe(1);
      } finally {
        await dlq.stop();
      }
      const [dead] = dlq.messages;
      expect(dead?.value).toBe('not a change event');
      expect(dead?.headers[deadLetterHeaders.reason]).toBe('undecodable');
      expect(dead?.headers[deadLetterHeaders.topic]).toBe(names.cdnTopic);
      expect(
        await metricValue(running.registry, 'walpurge_cdn_lane_entries_total', {
          provider: 'http',
          outcome: 'undecodable',
        }),
      ).toBe(1);
    } finally {
      await producer.producer.disconnect();
      await running.stop();
    }
  });
});

describe('the CDN lane, kafka transport, graceful stop', () => {
  it('a stop while the CDN throttles abandons the call in flight uncommitted: the next start purges it', async () => {
    const names = uniqueNames('lane_stop');
    topics.push(names.topic, names.deadLetterTopic, names.cdnTopic);
    prefixes.push(names.prefix);
    const { cdn, endpoint } = await startCdn();
    const config = invalidatorConfig(services, names, {
      cdn: { http: { endpoint, concurrency: 2 }, coalesceWindowMs: 200 },
      rules: [itemRule],
      invalidator: { stopTimeoutMs: 1_000 },
    });
    const producer = await connectProducer(kafka);
    // Retry-After 30 s: only the stop deadline ends the call.
    cdn.throttle(60_000, 30);
    const first = await startInvalidator(config);
    try {
      await producer.sendEvents(names.topic, [item(1), item(2)]);
      await waitForAllCommitted(admin, names.group, names.topic, 15_000);
      await waitFor('the lane to meet the 429', async () => cdn.requests.length > 0, { timeoutMs: 15_000 });
    } finally {
      await first.stop();
    }
    const cdnGroup = `${names.group}-cdn-http`;
    expect((await committedOffsets(admin, cdnGroup, names.cdnTopic)).filter((offset) => offset > 0)).toEqual(
      [],
    );
    cdn.unthrottle();
    const second = await startInvalidator(config);
    try {
      await waitFor('the next start to purge them', async () => purgedPaths(cdn).length === 2, {
        timeoutMs: 30_000,
      });
      expect(purgedPaths(cdn)).toEqual(['/items/1', '/items/2']);
    } finally {
      await producer.producer.disconnect();
      await second.stop();
    }
  });
});
