/**
 * Dead letters too large for the dead-letter topic: cut down and sent, never retried as is (which
 * would stall the partition) and never dropped. The dead-letter topics get a small
 * max.message.bytes so the test moves kilobytes, not megabytes.
 */
import type { Admin, Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
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
  type DeadLetter,
  type Names,
} from '../../test/harness.js';
import { deadLetterHeaders } from './dead-letter.js';

const services = inject('services');

let kafka: Kafka;
let admin: Admin;
const topics: string[] = [];

beforeAll(async () => {
  kafka = kafkaClient(services);
  admin = kafka.admin();
  await admin.connect();
});
afterAll(async () => {
  await admin?.deleteTopics({ topics }).catch(() => undefined);
  await admin?.disconnect();
});

/** Creates the dead-letter topic ahead of the invalidator (which leaves existing topics alone). */
async function createDeadLetterTopic(names: Names, maxMessageBytes: number): Promise<void> {
  topics.push(names.topic, names.deadLetterTopic, names.cdnTopic);
  await admin.createTopics({
    topics: [
      {
        topic: names.deadLetterTopic,
        numPartitions: 1,
        configEntries: [{ name: 'max.message.bytes', value: String(maxMessageBytes) }],
      },
    ],
    waitForLeaders: true,
  });
}

async function readDeadLetters(topic: string, count: number): Promise<DeadLetter[]> {
  const dlq = await readTopic(kafka, topic);
  try {
    await expect.poll(() => dlq.messages.length, { timeout: 20_000 }).toBe(count);
  } finally {
    await dlq.stop();
  }
  return dlq.messages;
}

const rules = [{ table: 'public.users', redis: { keys: ['user:{id}'] } }];

describe('dead letters larger than the size limit', () => {
  it('are cut to fit kafka.maxMessageBytes before sending: value stub, then key and headers too; the partition goes on', async () => {
    const names = uniqueNames('dlq_limit');
    await createDeadLetterTopic(names, 64 * 1024);
    const running = await startInvalidator(
      invalidatorConfig(services, names, {
        partitions: 1,
        rules,
        kafka: { brokers: services.kafkaBrokers, maxMessageBytes: 4096 },
      }),
    );
    const producer = await connectProducer(kafka);
    try {
      await producer.sendRaw(names.topic, [
        { key: 'small', value: 'garbage', headers: { origin: 'test' } },
        { key: 'big-value', value: 'x'.repeat(6_000), headers: { origin: 'test' } },
        { key: 'k'.repeat(5_000), value: 'garbage' },
      ]);
      await producer.sendEvents(names.topic, [
        changeEvent('c', 'users', { key: { id: 1 }, before: null, after: { id: 1 } }),
      ]);
      await waitForAllCommitted(admin, names.group, names.topic);

      const [small, bigValue, bigKey] = await readDeadLetters(names.deadLetterTopic, 3);
      // Fits: the original, byte for byte, without truncation headers.
      expect(small).toMatchObject({ key: 'small', value: 'garbage' });
      expect(small?.headers['origin']).toBe('test');
      expect(small?.headers[deadLetterHeaders.truncated]).toBeUndefined();

      // Too big a value: replaced by a stub that says where the original is; key and headers kept.
      expect(bigValue?.key).toBe('big-value');
      expect(bigValue?.headers).toMatchObject({
        origin: 'test',
        [deadLetterHeaders.truncated]: 'value',
        [deadLetterHeaders.originalBytes]: '6000',
        [deadLetterHeaders.reason]: 'undecodable',
        [deadLetterHeaders.offset]: '1',
      });
      expect(JSON.parse(bigValue?.value ?? '')).toMatchObject({
        walpurgeDeadLetter: 'truncated',
        truncated: ['value'],
        source: { topic: names.topic, partition: 0, offset: '1' },
        originalBytes: { value: 6_000 },
        limitBytes: 4096,
      });

      // Too big a key: the stub alone still does not fit, so key and original headers go as well.
      expect(bigKey?.key).toBeNull();
      expect(bigKey?.headers[deadLetterHeaders.truncated]).toBe('value,key,headers');
      expect(JSON.parse(bigKey?.value ?? '')).toMatchObject({
        source: { topic: names.topic, partition: 0, offset: '2' },
        originalBytes: { key: 5_000, value: 7 },
      });

      const metric = 'walpurge_invalidator_dead_letters_truncated_total';
      expect(await metricValue(running.registry, metric, { trigger: 'limit', reason: 'undecodable' })).toBe(
        2,
      );
      expect(await metricValue(running.registry, metric, { trigger: 'broker' })).toBe(0);
      expect(await metricValue(running.registry, 'walpurge_invalidator_dead_letters_total')).toBe(3);
    } finally {
      await producer.producer.disconnect();
      await running.stop();
    }
  });

  it('are cut and resent when the broker refuses them as too large (topic limit below kafka.maxMessageBytes)', async () => {
    const names = uniqueNames('dlq_broker');
    await createDeadLetterTopic(names, 4096);
    // kafka.maxMessageBytes stays at its default (1,000,000): only the broker knows the real limit.
    const running = await startInvalidator(invalidatorConfig(services, names, { partitions: 1, rules }));
    const producer = await connectProducer(kafka);
    try {
      await producer.sendRaw(names.topic, [
        { key: 'big-value', value: 'y'.repeat(8_000) },
        { key: 'small', value: 'garbage' },
      ]);
      await waitForAllCommitted(admin, names.group, names.topic);

      const [bigValue, small] = await readDeadLetters(names.deadLetterTopic, 2);
      expect(bigValue?.key).toBe('big-value');
      expect(bigValue?.headers[deadLetterHeaders.truncated]).toBe('value');
      expect(bigValue?.headers[deadLetterHeaders.originalBytes]).toBe('8000');
      expect(JSON.parse(bigValue?.value ?? '')).toMatchObject({
        source: { topic: names.topic, partition: 0, offset: '0' },
        limitBytes: 1_000_000,
      });
      expect(small).toMatchObject({ key: 'small', value: 'garbage' });
      expect(
        await metricValue(running.registry, 'walpurge_invalidator_dead_letters_truncated_total', {
          trigger: 'broker',
        }),
      ).toBe(1);
      expect(await metricValue(running.registry, 'walpurge_invalidator_dead_letters_total')).toBe(2);
    } finally {
      await producer.producer.disconnect();
      await running.stop();
    }
  });
});
