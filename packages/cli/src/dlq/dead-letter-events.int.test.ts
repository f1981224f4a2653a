import { Kafka, logLevel, type Admin } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { WalpurgeConfig, type KafkaConfig } from '@walpurge/config';
import { uniqueName } from '@walpurge/testing';
import { readDeadLetterTopic } from './dead-letter-events.js';

/**
 * `dlq list --limit N` promises the N oldest dead letters. On a topic of several partitions the
 * consumer reads them partition by partition, not in time order: the newest ones sit in the
 * partition that is likely read first here.
 */
const services = inject('services');
const name = uniqueName('dlq_order');
const deadLetterTopic = `${name}.dlq`;
let admin: Admin;
let kafka: Kafka;

const base = Date.parse('2026-01-01T00:00:00Z');
/** partition → minutes after `base` of its records. Partition 0 holds the newest ones. */
const layout: Array<[number, number[]]> = [
  [0, [50, 51, 52, 53]],
  [1, [10, 40]],
  [2, [5, 20, 30]],
];

beforeAll(async () => {
  kafka = new Kafka({ clientId: name, brokers: services.kafkaBrokers, logLevel: logLevel.NOTHING });
  admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: deadLetterTopic, numPartitions: 3 }], waitForLeaders: true });
  const producer = kafka.producer();
  await producer.connect();
  for (const [partition, minutes] of layout)
    await producer.send({
      topic: deadLetterTopic,
      messages: minutes.map((m) => ({
        partition,
        key: `k${m}`,
        value: `not an event ${m}`,
        timestamp: String(base + m * 60_000),
      })),
    });
  await producer.disconnect();
});

afterAll(async () => {
  await admin.deleteTopics({ topics: [deadLetterTopic] }).catch(() => {});
  await admin.disconnect();
});

describe('readDeadLetterTopic', () => {
  const config = () =>
    WalpurgeConfig.parse({
      transport: 'kafka',
      kafka: {
        brokers: services.kafkaBrokers,
        topic: `${name}.changes`,
        deadLetterTopic,
        consumerGroup: name,
      },
    }) as WalpurgeConfig & { kafka: KafkaConfig };

  it('returns the N oldest across partitions, oldest first', async () => {
    const letters = await readDeadLetterTopic(config(), {}, 4);
    expect(letters.map((l) => l.entry.deadLetteredAt)).toEqual(
      [5, 10, 20, 30].map((m) => new Date(base + m * 60_000).toISOString()),
    );
  });

  it('returns everything in time order when the limit is larger', async () => {
    const letters = await readDeadLetterTopic(config(), {}, 100);
    const minutes = layout.flatMap(([, m]) => m).sort((a, b) => a - b);
    expect(letters.map((l) => l.entry.key)).toEqual(minutes.map((m) => `k${m}`));
  });
});
