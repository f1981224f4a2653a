import kafkajs from 'kafkajs';
import { describe, expect, inject, it } from 'vitest';
import { KafkaConfig } from '@walpurge/config';
import { uniqueName } from '@walpurge/testing';
import { TopicIdReader } from './topic-ids.js';

const services = inject('services');

describe('TopicIdReader (a real broker)', () => {
  it('reads a topic ID, a new one once the topic is deleted and re-created, and none for a missing topic', async () => {
    const admin = new kafkajs.Kafka({
      brokers: services.kafkaBrokers,
      logLevel: kafkajs.logLevel.NOTHING,
    }).admin();
    const reader = new TopicIdReader(KafkaConfig.parse({ brokers: services.kafkaBrokers }));
    const topic = uniqueName('ids');
    await admin.connect();
    try {
      expect(await reader.read(topic)).toBeUndefined();
      await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
      const first = await reader.read(topic);
      expect(first).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      expect(await reader.read(topic)).toBe(first);

      await admin.deleteTopics({ topics: [topic] });
      await expect
        .poll(async () => (await admin.listTopics()).includes(topic), { timeout: 30_000 })
        .toBe(false);
      await expect
        .poll(
          () =>
            admin
              .createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true })
              .then(() => true)
              .catch(() => false),
          { timeout: 30_000 },
        )
        .toBe(true);
      const second = await reader.read(topic);
      expect(second).toBeDefined();
      expect(second).not.toBe(first);
    } finally {
      await reader.close();
      await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
      await admin.disconnect();
    }
    await expect(reader.read(topic)).rejects.toThrow('closed');
  });
});
