import { Redis } from 'ioredis';
import type { Admin, Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  changeEvent,
  connectProducer,
  deleteKeys,
  invalidatorConfig,
  kafkaClient,
  startInvalidator,
  uniqueNames,
  waitForAllCommitted,
} from '../test/harness.js';

const services = inject('services');

let kafka: Kafka;
let admin: Admin;
let redis: Redis;

beforeAll(async () => {
  kafka = kafkaClient(services);
  admin = kafka.admin();
  await admin.connect();
  redis = new Redis(services.redisUrl);
});
afterAll(async () => {
  await admin?.disconnect();
  redis?.disconnect();
});

describe('invalidator.maxFetchBytes', () => {
  it('purges events each larger than the whole fetch budget: the broker still returns a first record batch beyond it', async () => {
    const names = uniqueNames('fetch_bytes');
    const config = invalidatorConfig(services, names, {
      partitions: 2,
      rules: [{ table: 'docs', redis: { keys: ['doc:{id}'] } }],
      invalidator: { maxFetchBytes: 4096 },
    });
    expect(config.invalidator.maxFetchBytes).toBe(4096);
    const ids = Array.from({ length: 60 }, (_, i) => i);
    await redis.mset(...ids.flatMap((id) => [`${names.prefix}doc:${id}`, 'cached']));
    const running = await startInvalidator(config);
    const producer = await connectProducer(kafka);
    try {
      // Each event carries a 20 kB column: five times the fetch budget.
      const body = 'x'.repeat(20_000);
      for (let start = 0; start < ids.length; start += 20)
        await producer.sendEvents(
          names.topic,
          ids
            .slice(start, start + 20)
            .map((id) => changeEvent('u', 'docs', { key: { id }, before: null, after: { id, body } })),
        );
      await waitForAllCommitted(admin, names.group, names.topic);
      const left = await redis.exists(...ids.map((id) => `${names.prefix}doc:${id}`));
      expect(left).toBe(0);
    } finally {
      await producer.producer.disconnect();
      await running.stop();
      await admin
        .deleteTopics({ topics: [names.topic, names.deadLetterTopic, names.cdnTopic] })
        .catch(() => {});
      await deleteKeys(redis, names.prefix);
    }
  });

  it('refuses a budget too small for any record', () => {
    expect(() =>
      invalidatorConfig(services, uniqueNames('tiny'), { invalidator: { maxFetchBytes: 100 } }),
    ).toThrow(/maxFetchBytes/);
  });
});
