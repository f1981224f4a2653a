import kafkajs, { type Admin, type Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { KafkaConfig } from '@walpurge/config';
import { uniqueName } from '@walpurge/testing';
import { changeEvent, endOffsets, kafkaClient, logger } from '../../test/harness.js';
import { ensureTopics } from '@walpurge/kafka';
import { KafkaCdnQueue } from './kafka-cdn-queue.js';

/** The kafka CDN queue against a real broker and a CDN topic created as the invalidator creates it. */
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

async function cdnTopic(): Promise<KafkaConfig> {
  const config = KafkaConfig.parse({
    brokers: services.kafkaBrokers,
    topic: uniqueName('cdnq_changes'),
    deadLetterTopic: uniqueName('cdnq_dlq'),
    cdnTopic: uniqueName('cdnq_cdn'),
    partitions: 1,
  });
  topics.push(config.topic, config.deadLetterTopic, config.cdnTopic);
  await ensureTopics(kafka, config);
  return config;
}

describe('the kafka CDN queue', () => {
  it('enqueues a batch of 1000 events of ~1.1 KB (more than one record batch may hold) in several sends', async () => {
    const config = await cdnTopic();
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    try {
      const queue = new KafkaCdnQueue({
        producer,
        topic: config.cdnTopic,
        maxMessageBytes: config.maxMessageBytes,
        logger,
        backoff: { initialMs: 20, maxMs: 200 },
      });
      const filler = 'x'.repeat(1_000);
      const events = Array.from({ length: 1_000 }, (_, id) =>
        changeEvent('u', 'items', { key: { id }, before: null, after: { id, filler } }),
      );
      await queue.enqueue(events, new AbortController().signal);
      expect(await endOffsets(admin, config.cdnTopic)).toEqual([1_000]);
    } finally {
      await producer.disconnect();
    }
  });

  it('the CDN topic keeps its entries until they are purged (retention.ms -1): a provider paused for a week loses nothing', async () => {
    const config = await cdnTopic();
    const { resources } = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [
        { type: kafkajs.ConfigResourceTypes.TOPIC, name: config.cdnTopic, configNames: ['retention.ms'] },
      ],
    });
    const retention = resources[0]?.configEntries.find((entry) => entry.configName === 'retention.ms');
    expect(retention?.configValue).toBe('-1');
  });
});
