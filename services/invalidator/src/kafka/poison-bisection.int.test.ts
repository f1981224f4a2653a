import { Redis } from 'ioredis';
import type { Admin, Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startLocalRedis, type LocalRedis } from '@walpurge/testing';
import {
  changeEvent,
  connectProducer,
  invalidatorConfig,
  kafkaClient,
  metricValue,
  readTopic,
  startInvalidator,
  uniqueNames,
  waitForAllCommitted,
} from '../../test/harness.js';
import { deadLetterHeaders } from './dead-letter.js';

/**
 * The Kafka transport isolates a poison event among pattern events by bisection. SCAN commands are
 * counted on a cache Redis of this test's own (INFO commandstats), since the shared one serves
 * other suites in parallel.
 */
const services = inject('services');
let kafka: Kafka;
let admin: Admin;
let cache: LocalRedis;
let redis: Redis;
const topics: string[] = [];

beforeAll(async () => {
  kafka = kafkaClient(services);
  admin = kafka.admin();
  await admin.connect();
  cache = await startLocalRedis();
  redis = new Redis(cache.url);
});
afterAll(async () => {
  await admin?.deleteTopics({ topics }).catch(() => undefined);
  await admin?.disconnect();
  redis?.disconnect();
  await cache?.stop();
});

async function scanCalls(): Promise<number> {
  return Number(/^cmdstat_scan:calls=(\d+)/m.exec(await redis.info('commandstats'))?.[1] ?? 0);
}

describe('poison isolation on the Kafka transport', () => {
  it('one poison event among 32 pattern events: O(log N) sweeps, only the poison dead-lettered, the rest purged', async () => {
    const names = uniqueNames('bisect_kafka');
    topics.push(names.topic, names.deadLetterTopic);
    const filler = Array.from({ length: 5_000 }, (_, i) => [`${names.prefix}filler:${i}`, 'v']).flat();
    await redis.mset(...filler);
    const users = Array.from({ length: 32 }, (_, i) => `n${i}`);
    await redis.mset(...users.flatMap((name) => [`${names.prefix}user:${name}:1`, 'x']));
    await redis.set(`${names.prefix}tag:user-n20`, 'not a set');
    const config = invalidatorConfig({ ...services, redisUrl: cache.url }, names, {
      partitions: 1,
      invalidator: { coalesceWindowMs: 200 },
      rules: [
        {
          table: 'users',
          on: ['insert', 'update', 'delete'],
          redis: { patterns: ['user:{name}:*'], tags: ['user-{name}'] },
        },
      ],
    });
    const running = await startInvalidator(config);
    const producer = await connectProducer(kafka);
    try {
      // One SCAN pass over this keyspace, through the same invalidator.
      let before = await scanCalls();
      await producer.sendEvents(names.topic, [user('warmup')]);
      await waitForAllCommitted(admin, names.group, names.topic);
      const perPass = (await scanCalls()) - before;
      expect(perPass).toBeGreaterThan(2);

      before = await scanCalls();
      await producer.sendEvents(names.topic, users.map(user));
      await waitForAllCommitted(admin, names.group, names.topic);
      const passes = ((await scanCalls()) - before) / perPass;
      // The coalesced batch, the chunk alone, then 1 + 2·log2(32) bisection attempts at most,
      // plus slack for a chunk split by the fetch; one by one would be 34.
      expect(passes).toBeLessThanOrEqual(14);
      const left = users.filter((name) => name !== 'n20').map((name) => `${names.prefix}user:${name}:1`);
      expect(await redis.exists(...left)).toBe(0);

      const dlq = await readTopic(kafka, names.deadLetterTopic);
      try {
        await expect.poll(() => dlq.messages.length, { timeout: 20_000 }).toBe(1);
      } finally {
        await dlq.stop();
      }
      expect(JSON.parse(dlq.messages[0]?.value ?? '{}')).toMatchObject({ after: { name: 'n20' } });
      expect(dlq.messages[0]?.headers[deadLetterHeaders.reason]).toBe('purge-rejected');
      expect(
        await metricValue(running.registry, 'walpurge_invalidator_rejected_events_total', {
          transport: 'kafka',
        }),
      ).toBe(1);
    } finally {
      await producer.producer.disconnect();
      await running.stop();
    }
  });
});

function user(name: string) {
  return changeEvent('c', 'users', { key: { name }, before: null, after: { name } });
}
