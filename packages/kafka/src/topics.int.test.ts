import kafkajs from 'kafkajs';
import { describe, expect, inject, it } from 'vitest';
import { waitFor } from '@walpurge/testing';
import { KafkaConfig } from '@walpurge/config';
import { createLogger, createMetricsRegistry } from '@walpurge/core';
import { topicMaxMessageBytes } from './topic-config.js';
import { uniqueName } from '@walpurge/testing';
import { createKafka } from './kafka-client.js';
import { readTopicReplication } from './topic-durability.js';
import { ensureTopics, watchWalpurgeTopics } from './topics.js';

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

describe('topic durability re-check', () => {
  it('flags a min.insync.replicas above the replication factor, and clears the gauge once an operator fixed it', async () => {
    const config = topicConfig();
    const admin = testAdmin();
    await admin.connect();
    const lines: Array<{ level: number; msg: string }> = [];
    const logger = createLogger({
      level: 'info',
      destination: {
        write: (line: string) => lines.push(JSON.parse(line) as { level: number; msg: string }),
      },
    });
    const registry = createMetricsRegistry({ defaultMetrics: false });
    const gauge = async () =>
      (await registry.getSingleMetric('walpurge_kafka_topic_unsafe_durability')?.get())?.values.find(
        (value) => value.labels['topic'] === config.topic,
      )?.value;
    const options = { topics: ['changes'] as const, logger, registry, verdicts: new Map<string, string>() };
    let watch: { stop(): void } | undefined;
    try {
      await admin.createTopics({
        topics: [
          {
            topic: config.topic,
            numPartitions: 1,
            replicationFactor: 1,
            configEntries: [{ name: 'min.insync.replicas', value: '2' }],
          },
        ],
        waitForLeaders: true,
      });
      await ensureTopics(createKafka(config), config, options);
      expect(await gauge()).toBe(1);
      expect(lines.filter((line) => line.level === 40).map((line) => line.msg)).toEqual([
        `Kafka topic ${config.topic}: every acks=all write is refused: min.insync.replicas is 2, above its 1 replica: Kafka refuses every acks=all write (NOT_ENOUGH_REPLICAS) and the listener retries forever, holding its replication slot`,
      ]);
      watch = watchWalpurgeTopics(createKafka(config), config, { ...options, intervalMs: 200 });
      await admin.alterConfigs({
        validateOnly: false,
        resources: [
          { type: 2, name: config.topic, configEntries: [{ name: 'min.insync.replicas', value: '1' }] },
        ],
      });
      await waitFor('the re-check to clear the gauge', async () => (await gauge()) === 0);
      // Logged once when it changed, not at every re-check.
      expect(lines.filter((line) => line.msg.includes('replication now safe'))).toHaveLength(1);
      expect(lines.filter((line) => line.level === 40)).toHaveLength(1);
    } finally {
      watch?.stop();
      await admin.deleteTopics({ topics: [config.topic] }).catch(() => {});
      await admin.disconnect();
    }
  });
});
