import kafkajs from 'kafkajs';
import { describe, expect, inject, it } from 'vitest';
import { KafkaConfig } from '@walpurge/config';
import { createLogger } from '@walpurge/core';
import { topicMaxMessageBytes } from '@walpurge/protocol';
import { uniqueName } from '@walpurge/testing';
import { createKafka, ensureTopics } from './kafka-client.js';

const services = inject('services');

describe('invalidator topics', () => {
  it('creates the change topic like the listener does: it accepts kafka.maxMessageBytes', async () => {
    const config = KafkaConfig.parse({
      brokers: services.kafkaBrokers,
      topic: uniqueName('changes'),
      deadLetterTopic: uniqueName('dlq'),
      partitions: 1,
      maxMessageBytes: 3_000_000,
    });
    await ensureTopics(createKafka(config, createLogger({ level: 'silent' })), config);
    const admin = new kafkajs.Kafka({
      brokers: services.kafkaBrokers,
      logLevel: kafkajs.logLevel.NOTHING,
    }).admin();
    await admin.connect();
    try {
      expect(await topicMaxMessageBytes(admin, config.topic)).toBe(3_000_000);
      expect(await topicMaxMessageBytes(admin, config.deadLetterTopic)).toBe(3_000_000);
    } finally {
      await admin.deleteTopics({ topics: [config.topic, config.deadLetterTopic] }).catch(() => {});
      await admin.disconnect();
    }
  });
});
