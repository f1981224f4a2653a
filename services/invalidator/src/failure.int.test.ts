import { Redis } from 'ioredis';
import type { Admin, Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { waitFor } from '@walpurge/testing';
import {
  changeEvent,
  committedOffsets,
  connectProducer,
  deleteKeys,
  invalidatorConfig,
  kafkaClient,
  metricValue,
  readTopic,
  startInvalidator,
  uniqueNames,
  waitForAllCommitted,
} from '../test/harness.js';
import { RecordingServer } from '../test/recording-server.js';
import { TcpProxy } from '../test/tcp-proxy.js';
import { deadLetterHeaders } from './kafka/dead-letter.js';

const services = inject('services');

let kafka: Kafka;
let admin: Admin;
let redis: Redis;
const topics: string[] = [];
const prefixes: string[] = [];

beforeAll(async () => {
  kafka = kafkaClient(services);
  admin = kafka.admin();
  await admin.connect();
  redis = new Redis(services.redisUrl);
});
afterAll(async () => {
  await admin?.deleteTopics({ topics }).catch(() => undefined);
  for (const prefix of prefixes) await deleteKeys(redis, prefix);
  await admin?.disconnect();
  redis?.disconnect();
});

const row = (table: string, id: number | string, extra: Record<string, unknown> = {}) =>
  changeEvent('c', table, { key: { id }, before: null, after: { id, ...extra } });

async function countExisting(keys: readonly string[]): Promise<number> {
  return keys.length === 0 ? 0 : redis.exists(...keys);
}

/** `/items/3/7` → ['3', 7]: which row and which change a recorded CDN request purged. */
function parsePath(path: string): { id: string; seq: number } {
  const [, , id = '', seq = ''] = path.split('/');
  return { id, seq: Number(seq) };
}

describe('invalidator when a purge target fails', () => {
  it('Redis down: retries with backoff, commits nothing past the failure, stops without committing, skips nothing, then recovers', async () => {
    const names = uniqueNames('redis_down');
    topics.push(names.topic, names.deadLetterTopic, names.cdnTopic);
    prefixes.push(names.prefix.slice(0, -1));
    const target = new URL(services.redisUrl);
    const proxy = new TcpProxy(target.hostname, Number(target.port));
    await proxy.start();
    const config = invalidatorConfig(services, names, {
      redis: { url: `redis://127.0.0.1:${proxy.port}`, keyPrefix: names.prefix },
      rules: [{ table: 'users', redis: { keys: ['user:{id}'] } }],
      invalidator: { stopTimeoutMs: 1_000 },
    });
    let running = await startInvalidator(config);
    const producer = await connectProducer(kafka);
    const key = (id: number): string => `${names.prefix}user:${id}`;
    try {
      await redis.set(key(0), 'x');
      await producer.sendEvents(names.topic, [row('users', 0)]);
      await waitForAllCommitted(admin, names.group, names.topic);
      expect(await redis.exists(key(0))).toBe(0);
      const before = await committedOffsets(admin, names.group, names.topic);

      await proxy.stop();
      // Still in the consumer group, but it cannot purge: readiness says so.
      await waitFor('not ready while the cache Redis is down', async () => !running.invalidator.isReady(), {
        timeoutMs: 10_000,
      });
      expect(running.invalidator.notReadyReason()).toMatch(/cache Redis/);
      const during = Array.from({ length: 30 }, (_, i) => i + 1);
      await redis.mset(...during.flatMap((id) => [key(id), 'stale']));
      await producer.sendEvents(
        names.topic,
        during.map((id) => row('users', id)),
      );
      const retries = () =>
        metricValue(running.registry, 'walpurge_invalidator_purge_retries_total', { target: 'redis' });
      await waitFor('purges of the down Redis to be retried', async () => (await retries()) >= 2, {
        timeoutMs: 30_000,
      });
      // Backpressure: nothing committed past the failure, nothing purged, the failures are counted.
      expect(await committedOffsets(admin, names.group, names.topic)).toEqual(before);
      expect(await countExisting(during.map(key))).toBe(during.length);
      expect(
        await metricValue(running.registry, 'walpurge_invalidator_purges_total', {
          target: 'redis',
          outcome: 'failure',
        }),
      ).toBeGreaterThan(0);
      expect(await metricValue(running.registry, 'walpurge_invalidator_dead_letters_total')).toBe(0);

      // A graceful stop during the outage abandons the stuck batch after stopTimeoutMs, uncommitted.
      await running.stop();
      expect(await committedOffsets(admin, names.group, names.topic)).toEqual(before);

      await proxy.start();
      running = await startInvalidator(config);
      await waitForAllCommitted(admin, names.group, names.topic);
      expect(await countExisting(during.map(key))).toBe(0);
      // And the pipeline goes on.
      await redis.set(key(99), 'x');
      await producer.sendEvents(names.topic, [row('users', 99)]);
      await waitForAllCommitted(admin, names.group, names.topic);
      expect(await redis.exists(key(99))).toBe(0);
      expect(await metricValue(running.registry, 'walpurge_invalidator_dead_letters_total')).toBe(0);
    } finally {
      await producer.producer.disconnect();
      await running.stop();
      await proxy.stop();
    }
  });

  it('CDN failing: Redis is purged and offsets committed without waiting for it, every URL is purged once it recovers; a rejected purge is dead-lettered', async () => {
    const names = uniqueNames('cdn_down');
    topics.push(names.topic, names.deadLetterTopic, names.cdnTopic);
    prefixes.push(names.prefix.slice(0, -1));
    const cdn = new RecordingServer();
    let failing = true;
    cdn.defaultReply = (request) =>
      request.path.includes('/bad/')
        ? { status: 400, body: 'malformed purge request' }
        : failing
          ? { status: 503, headers: { 'retry-after': '0' }, body: 'unavailable' }
          : { status: 200, body: '' };
    const endpoint = await cdn.start();
    const running = await startInvalidator(
      invalidatorConfig(services, names, {
        cdn: { http: { endpoint, concurrency: 2 } },
        rules: [
          {
            table: 'items',
            on: ['insert', 'update', 'delete'],
            redis: { keys: ['item:{id}'] },
            cdn: { urls: ['https://cdn.test/items/{id}/1'] },
          },
        ],
      }),
    );
    const producer = await connectProducer(kafka);
    const ids = Array.from({ length: 20 }, (_, i) => i);
    try {
      await redis.mset(...ids.flatMap((id) => [`${names.prefix}item:${id}`, 'stale']));
      await producer.sendEvents(
        names.topic,
        ids.map((id) => row('items', id)),
      );
      // Every batch got through its Redis stage and was committed; its CDN lane is retrying.
      await waitFor(
        'Redis purged and CDN purges retried',
        async () =>
          (await countExisting(ids.map((id) => `${names.prefix}item:${id}`))) === 0 &&
          cdn.requests.length >= 10,
        { timeoutMs: 30_000 },
      );
      await waitForAllCommitted(admin, names.group, names.topic);
      expect(cdn.succeeded).toHaveLength(0);
      expect(
        await metricValue(running.registry, 'walpurge_invalidator_purge_retries_total', { target: 'http' }),
      ).toBeGreaterThan(0);

      failing = false;
      await waitFor(
        'every CDN purge',
        async () => new Set(cdn.succeeded.map((r) => r.path)).size === ids.length,
        {
          timeoutMs: 30_000,
        },
      );
      const purgedIds = new Set(cdn.succeeded.map((request) => parsePath(request.path).id));
      expect([...purgedIds].sort()).toEqual(ids.map(String).sort());
      expect(cdn.succeeded.every((request) => request.headers['x-purge-host'] === 'cdn.test')).toBe(true);

      // A purge the CDN rejects as malformed cannot succeed by retrying: its event is isolated and
      // dead-lettered, the events around it are purged, the partition goes on.
      const before = cdn.succeeded.length;
      await producer.sendEvents(names.topic, [row('items', 100), row('items', 'bad'), row('items', 101)]);
      // Bisection may purge a good neighbour twice (in the refused call and again in its half):
      // purges are idempotent, so wait for both ids rather than for a count of requests.
      const laterIds = (): string[] =>
        cdn.succeeded.slice(before).map((request) => parsePath(request.path).id);
      await waitFor(
        'the CDN purges of 100 and 101',
        async () => laterIds().includes('100') && laterIds().includes('101'),
        { timeoutMs: 30_000 },
      );
      const later = laterIds();
      expect(new Set(later)).toEqual(new Set(['100', '101']));
      const dlq = await readTopic(kafka, names.deadLetterTopic);
      try {
        await expect.poll(() => dlq.messages.length, { timeout: 20_000 }).toBe(1);
      } finally {
        await dlq.stop();
      }
      const [dead] = dlq.messages;
      expect(JSON.parse(dead?.value ?? '{}')).toMatchObject({ after: { id: 'bad' } });
      expect(dead?.headers[deadLetterHeaders.reason]).toBe('cdn-rejected');
      expect(dead?.headers[deadLetterHeaders.errorCode]).toBe('WP_PURGE_FAILED');
      expect(dead?.headers[deadLetterHeaders.error]).toMatch(/answered 400/);
      expect(
        await metricValue(running.registry, 'walpurge_invalidator_dead_letters_total', {
          reason: 'cdn-rejected',
        }),
      ).toBe(1);
    } finally {
      await producer.producer.disconnect();
      await running.stop();
      await cdn.stop();
    }
  });

  it('keeps per-partition order: the changes of one row are purged in commit order, across batches', async () => {
    const names = uniqueNames('order');
    topics.push(names.topic, names.deadLetterTopic, names.cdnTopic);
    prefixes.push(names.prefix.slice(0, -1));
    const cdn = new RecordingServer();
    cdn.defaultReply = () => ({ status: 200, body: '' });
    const endpoint = await cdn.start();
    const running = await startInvalidator(
      invalidatorConfig(services, names, {
        // One request at a time per batch, so the order requests arrive in is the order planned.
        cdn: { http: { endpoint, concurrency: 1 } },
        rules: [
          {
            table: 'rows',
            on: ['insert', 'update', 'delete'],
            cdn: { urls: ['https://cdn.test/rows/{id}/{seq}'] },
          },
        ],
        invalidator: { maxBatchEvents: 7, partitionsConsumedConcurrently: 3 },
      }),
    );
    const producer = await connectProducer(kafka);
    const rowIds = Array.from({ length: 12 }, (_, i) => `r${i}`);
    const changes = 25;
    try {
      for (let seq = 0; seq < changes; seq += 1) {
        await producer.sendEvents(
          names.topic,
          rowIds.map((id) => changeEvent('u', 'rows', { key: { id }, before: null, after: { id, seq } })),
        );
      }
      await waitForAllCommitted(admin, names.group, names.topic);
      // CDN purges trail: their lane reads the CDN topic in the order the batches enqueued them.
      await waitFor('every CDN purge', async () => cdn.succeeded.length >= rowIds.length * changes, {
        timeoutMs: 30_000,
      });
      const seen = new Map<string, number[]>();
      for (const request of cdn.succeeded) {
        const { id, seq } = parsePath(request.path);
        seen.set(id, [...(seen.get(id) ?? []), seq]);
      }
      const expected = Array.from({ length: changes }, (_, seq) => seq);
      for (const id of rowIds) expect(seen.get(id), `purges of row ${id}`).toEqual(expected);
      // The rows really were spread over several partitions, each consumed in several batches.
      expect(
        (await committedOffsets(admin, names.group, names.topic)).filter((offset) => offset > 0).length,
      ).toBeGreaterThan(1);
      expect(
        await metricValue(running.registry, 'walpurge_invalidator_batch_events_count'),
      ).toBeGreaterThanOrEqual(20);
    } finally {
      await producer.producer.disconnect();
      await running.stop();
      await cdn.stop();
    }
  });
});
