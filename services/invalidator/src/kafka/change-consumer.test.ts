import type { ConsumerConfig, Kafka } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { WalpurgeConfig } from '@walpurge/config';
import { createLogger, createMetricsRegistry } from '@walpurge/core';
import { createInvalidatorMetrics } from '../metrics.js';
import { ChangeConsumer, type ChangeConsumerOptions } from './change-consumer.js';

/** The consumer settings a ChangeConsumer asks kafkajs for, with the given invalidator section. */
function consumerSettings(invalidator: Record<string, unknown>): ConsumerConfig {
  const config = WalpurgeConfig.parse({
    transport: 'kafka',
    kafka: { brokers: ['127.0.0.1:9'] },
    invalidator,
  });
  let asked: ConsumerConfig | undefined;
  const kafka = {
    consumer: (settings: ConsumerConfig) => {
      asked = settings;
      return { events: {}, on: () => undefined };
    },
    admin: () => ({}),
  } as unknown as Kafka;
  new ChangeConsumer({
    kafka,
    kafkaConfig: config.kafka,
    invalidatorConfig: config.invalidator,
    logger: createLogger({ level: 'silent', pretty: false }),
    metrics: createInvalidatorMetrics(createMetricsRegistry({ defaultMetrics: false })),
    topicIds: null,
  } as unknown as ChangeConsumerOptions);
  if (asked === undefined) throw new Error('no consumer was created');
  return asked;
}

describe('invalidator.maxFetchBytes → the Kafka consumer', () => {
  it('bounds every fetch in bytes: the whole fetch, and each partition to 1 MiB or less', () => {
    expect(consumerSettings({})).toMatchObject({
      maxBytes: 10 * 1024 * 1024,
      maxBytesPerPartition: 1024 * 1024,
    });
    expect(consumerSettings({ maxFetchBytes: 4096 })).toMatchObject({
      maxBytes: 4096,
      maxBytesPerPartition: 4096,
    });
    expect(consumerSettings({ maxFetchBytes: 64 * 1024 * 1024 })).toMatchObject({
      maxBytes: 64 * 1024 * 1024,
      maxBytesPerPartition: 1024 * 1024,
    });
  });
});
