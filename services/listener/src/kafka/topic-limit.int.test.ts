import kafkajs from 'kafkajs';
import { describe, expect, inject, it } from 'vitest';
import { KafkaConfig } from '@walpurge/config';
import { ErrorCode, WalpurgeError } from '@walpurge/core';
import { uniqueName } from '@walpurge/testing';
import { testLogger } from '../test-support/harness.js';
import { createKafkaSink } from './kafka-sink.js';

const services = inject('services');

describe.each(['kafkajs', 'platformatic'] as const)(
  'listener: the change topic size limit (%s)',
  (producerClient) => {
    it('refuses to start on an existing topic whose max.message.bytes is below kafka.maxMessageBytes', async () => {
      const topic = uniqueName('small_topic');
      const admin = new kafkajs.Kafka({
        brokers: services.kafkaBrokers,
        logLevel: kafkajs.logLevel.NOTHING,
      }).admin();
      await admin.connect();
      try {
        await admin.createTopics({
          topics: [
            { topic, numPartitions: 1, configEntries: [{ name: 'max.message.bytes', value: '100000' }] },
          ],
          waitForLeaders: true,
        });
        const sink = createKafkaSink({
          config: KafkaConfig.parse({
            brokers: services.kafkaBrokers,
            topic,
            maxMessageBytes: 500_000,
            producerClient,
          }),
          logger: testLogger,
        });
        const error = await sink.connect().then(
          () => undefined,
          (caught: unknown) => caught,
        );
        await sink.close();
        expect(error).toBeInstanceOf(WalpurgeError);
        expect((error as WalpurgeError).code).toBe(ErrorCode.ConfigInvalid);
        expect((error as WalpurgeError).retriable).toBe(false);
        expect((error as WalpurgeError).message).toBe(
          `Kafka topic "${topic}" accepts messages up to 100000 bytes (max.message.bytes), below kafka.maxMessageBytes (500000): larger change events would be refused and replayed forever`,
        );
      } finally {
        await admin.deleteTopics({ topics: [topic] }).catch(() => {});
        await admin.disconnect();
      }
    });
  },
);
