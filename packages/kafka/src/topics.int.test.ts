import kafkajs from 'kafkajs';
import { describe, expect, inject, it } from 'vitest';
import { KafkaConfig } from '@walpurge/config';
import { createLogger, createMetricsRegistry } from '@walpurge/core';
import { topicMaxMessageBytes } from '@walpurge/protocol';
import { uniqueName } from '@walpurge/testing';
import { createKafka } from './kafka-client.js';
import { readTopicReplication } from './topic-durability.js';
import { ensureTopics } from './topics.js';

const services = inject('services');

function testAdmin() {
  return new kafkajs.Kafka({ brokers: services.kafkaBrokers, logLevel: kafkajs.logLevel.NOTHING }).admin();
}

function topicConfig(extra: Record<string, unknown> = {}): KafkaConfig {
  return KafkaConfig.parse({
    brokers: services.kafkaBrokers,
    topic: uniqueName('changes'),
    deadLetterTopic: uniqueName('dlq'),
    cdnTopic: uniqueName('cdn'),
    partitions: 1,
    ...extra,
  });
}

describe('invalidator topics', () => {
  it('creates the change topic like the listener does: it accepts kafka.maxMessageBytes; the CDN topic has one partition', async () => {
    const config = topicConfig({ maxMessageBytes: 3_000_000 });
    await ensureTopics(createKafka(config, { logger: createLogger({ level: 'silent' }) }), config);
    const admin = testAdmin();
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

describe('topic replication on a single broker', () => {
  it('resolves to replication factor 1 and min.insync.replicas 1, warns about nothing and says why once', async () => {
    const config = topicConfig();
    const lines: Array<{ level: number; msg: string }> = [];
    const logger = createLogger({
      level: 'info',
      destination: {
        write: (line: string) => lines.push(JSON.parse(line) as { level: number; msg: string }),
      },
    });
    const registry = createMetricsRegistry({ defaultMetrics: false });
    const ensured = await ensureTopics(createKafka(config), config, { logger, registry });
    const admin = testAdmin();
    await admin.connect();
    try {
      expect(ensured).toMatchObject({ brokers: 1, created: { replicationFactor: 1, minInsyncReplicas: 1 } });
      const names = [config.topic, config.cdnTopic, config.deadLetterTopic];
      expect(await readTopicReplication(admin, names, 1)).toEqual(
        names.map((topic) => ({ topic, replicationFactor: 1, minInsyncReplicas: 1, brokers: 1 })),
      );
      // Warn is pino level 40.
      expect(lines.filter((line) => line.level >= 40)).toEqual([]);
      expect(lines.filter((line) => line.msg.includes('single-broker'))).toHaveLength(1);
      const gauge = await registry.getSingleMetric('walpurge_kafka_topic_unsafe_durability')?.get();
      expect(gauge?.values.map((value) => [value.labels['topic'], value.value]).sort()).toEqual(
        names.map((topic) => [topic, 0]).sort(),
      );
    } finally {
      await admin
        .deleteTopics({ topics: [config.topic, config.deadLetterTopic, config.cdnTopic] })
        .catch(() => {});
      await admin.disconnect();
    }
  });
});
