import kafkajs from 'kafkajs';
import { describe, expect, inject, it } from 'vitest';
import { KafkaConfig } from '@walpurge/config';
import { createLogger } from '@walpurge/core';
import { topicMaxMessageBytes } from '@walpurge/protocol';
import { uniqueName } from '@walpurge/testing';
import { createKafka } from './kafka-client.js';
import { ensureTopics } from './topics.js';

const services = inject('services');

describe('invalidator topics', () => {
  it('creates the change topic like the listener does: it accepts kafka.maxMessageBytes; the CDN topic has one partition', async () => {
    const config = KafkaConfig.parse({
      brokers: services.kafkaBrokers,
      topic: uniqueName('changes'),
      deadLetterTopic: uniqueName('dlq'),
      cdnTopic: uniqueName('cdn'),
      partitions: 1,
      maxMessageBytes: 3_000_000,
    });
    await ensureTopics(createKafka(config, { logger: createLogger({ level: 'silent' }) }), config);
    const admin = new kafkajs.Kafka({
      brokers: services.kafkaBrokers,
      logLevel: kafkajs.logLevel.NOTHING,
    }).admin();
    await admin.connect();
    try {
      expect(await topicMaxMessageBytes(admin, config.topic)).toBe(3_000_000);
      expect(await topicMaxMessageBytes(admin, config.deadLetterTopic)).toBe(3_000_000);
      // The CDN queue carries the change topic's messages, and one partition paces each provider.
      expect(await topicMaxMessageBytes(admin, config.cdnTopic)).toBe(3_000_000);
      const [cdn] = (await admin.fetchTopicMetadata({ topics: [config.cdnTopic] })).topics;
      expect(cdn?.partitions).toHaveLength(1);
    } finally {
      await admin
        .deleteTopics({ topics: [config.topic, config.deadLetterTopic, config.cdnTopic] })
        .catch(() => {});
      await admin.disconnect();
    }
  });
});
