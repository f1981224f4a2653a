import kafkajs from 'kafkajs';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { uniqueName } from './index.js';

const { Kafka, Partitioners, logLevel } = kafkajs;

describe('Kafka from the test environment', () => {
  const { kafkaBrokers } = inject('services');
  const kafka = new Kafka({
    clientId: 'walpurge-testing-smoke',
    brokers: kafkaBrokers,
    logLevel: logLevel.WARN,
  });
  const admin = kafka.admin();
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  const consumer = kafka.consumer({ groupId: uniqueName('smoke_group') });
  const topic = uniqueName('kafka_smoke');

  afterAll(async () => {
    await consumer.disconnect();
    await producer.disconnect();
    await admin.deleteTopics({ topics: [topic] }).catch(() => {});
    await admin.disconnect();
  });

  it('produces a message to a fresh topic and consumes it back', async () => {
    await admin.connect();
    expect(await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true })).toBe(
      true,
    );

    await producer.connect();
    await producer.send({ topic, messages: [{ key: 'row:items:1', value: '{"op":"insert"}' }] });

    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    const received = new Promise<{ key: string | undefined; value: string | undefined }>((resolve) => {
      void consumer.run({
        eachMessage: async ({ message }) => {
          resolve({ key: message.key?.toString(), value: message.value?.toString() });
        },
      });
    });

    expect(await received).toEqual({ key: 'row:items:1', value: '{"op":"insert"}' });
  });
});
