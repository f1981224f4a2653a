/**
 * kafkajs can come out of a group coordinator move joined and heartbeating, but fetching nothing
 * (seen about once in eight broker restarts under load in coordinator-restart.int.test.ts): purges
 * stopped and the lag gauge froze at 0. Here the consumer is made to stop fetching on purpose (its
 * partitions paused behind the invalidator's back), and it must be noticed and restarted.
 */
import kafkajs, { type Consumer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createMetricsRegistry } from '@walpurge/core';
import type { ChangeEvent } from '@walpurge/protocol';
import {
  changeEvent,
  connectProducer,
  invalidatorConfig,
  logger,
  metricValue,
  uniqueNames,
} from '../../test/harness.js';
import { createInvalidatorMetrics } from '../metrics.js';
import { Coalescer } from '../pipeline/coalescer.js';
import { ChangeConsumer } from './change-consumer.js';
import type { DeadLetterQueue } from './dead-letter.js';

const services = inject('services');
const kafka = new kafkajs.Kafka({ brokers: services.kafkaBrokers, logLevel: kafkajs.logLevel.NOTHING });
let admin: kafkajs.Admin;

beforeAll(async () => {
  admin = kafka.admin();
  await admin.connect();
});
afterAll(async () => {
  await admin?.disconnect();
});

describe('a consumer that stops fetching', () => {
  it('is found by invalidator.stallTimeoutMs, counted, logged and restarted; every change is then purged', async () => {
    const names = uniqueNames('stalled');
    const config = invalidatorConfig(services, names, {
      partitions: 2,
      invalidator: { stallTimeoutMs: 2_000 },
    });
    await admin.createTopics({ topics: [{ topic: names.topic, numPartitions: 2 }], waitForLeaders: true });
    const registry = createMetricsRegistry({ defaultMetrics: false });
    const handled = new Set<unknown>();
    const record = async (events: readonly ChangeEvent[]) => {
      for (const event of events) handled.add(event.key?.['id']);
    };
    const consumer = new ChangeConsumer({
      kafka,
      kafkaConfig: config.kafka!,
      invalidatorConfig: config.invalidator,
      coalescer: new Coalescer(record, 0, 1000),
      handleEvents: record,
      deadLetters: {} as DeadLetterQueue,
      metrics: createInvalidatorMetrics(registry),
      logger,
      purgeSignal: new AbortController().signal,
    });
    const producer = await connectProducer(kafka);
    const send = (ids: number[]) =>
      producer.sendEvents(
        names.topic,
        ids.map((id) => changeEvent('u', 'items', { key: { id }, before: null, after: { id } })),
      );
    try {
      await consumer.start();
      await expect.poll(() => consumer.isReady(), { timeout: 30_000 }).toBe(true);
      await send([1, 2, 3, 4]);
      await expect.poll(() => handled.size, { timeout: 30_000 }).toBe(4);

      // Joined and heartbeating, fetching nothing: what the coordinator move left behind.
      const inner = (consumer as unknown as { consumer: Consumer }).consumer;
      inner.pause([{ topic: names.topic }]);
      await send([5, 6, 7, 8, 9, 10]);
      await expect.poll(() => handled.size, { timeout: 30_000, interval: 200 }).toBe(10);
      expect(await metricValue(registry, 'walpurge_invalidator_consumer_stalls_total')).toBe(1);
      expect((consumer as unknown as { consumer: Consumer }).consumer).not.toBe(inner);
      // The gauge shows the brokers' lag, not the value left by the last batch.
      await expect
        .poll(() => metricValue(registry, 'walpurge_invalidator_consumer_lag_messages'), { timeout: 10_000 })
        .toBe(0);
    } finally {
      await producer.producer.disconnect();
      await consumer.stop();
    }
  });
});
