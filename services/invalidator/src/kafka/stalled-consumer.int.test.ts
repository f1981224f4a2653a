/**
 * A consumer that stays in its group, heartbeating, but fetches nothing would stop every purge,
 * and the lag gauge (set only from handled batches) froze at 0. Here the consumer is made to stop
 * fetching on purpose (its partitions paused behind the invalidator's back), and it must be
 * noticed and restarted.
 */
import kafkajs, { type Consumer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { encodeChangeEvent, messageKey } from '@walpurge/protocol';
import { uniqueName } from '@walpurge/testing';
import { changeEvent, invalidatorConfig, metricValue, uniqueNames, type Names } from '../../test/harness.js';
import { startRecordingConsumer } from '../../test/recording-consumer.js';
import type { ChangeConsumer } from './change-consumer.js';

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

/** A ChangeConsumer on its own topic and group (or joining `joining`'s), recording the ids it purges. */
async function startConsumer(label: string, joining?: Names) {
  const names = joining ?? uniqueNames(label);
  const config = invalidatorConfig(services, names, {
    partitions: 2,
    invalidator: { stallTimeoutMs: 2_000 },
  });
  if (!joining)
    await admin.createTopics({ topics: [{ topic: names.topic, numPartitions: 2 }], waitForLeaders: true });
  const { registry, handled, consumer } = await startRecordingConsumer(kafka, config);
  /** How many distinct events were purged. */
  const purged = (): number => new Set(handled).size;
  const events = (ids: number[]) =>
    ids.map((id) => {
      const event = changeEvent('u', 'items', { key: { id }, before: null, after: { id } });
      return { key: messageKey(event), value: encodeChangeEvent(event) };
    });
  return { names, registry, purged, consumer, events };
}

describe('a consumer that stops fetching', () => {
  it('is found by invalidator.stallTimeoutMs, counted, logged and restarted; every change is then purged', async () => {
    const { names, registry, purged, consumer, events } = await startConsumer('stalled');
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    const send = (ids: number[]) => producer.send({ topic: names.topic, acks: -1, messages: events(ids) });
    try {
      await send([1, 2, 3, 4]);
      await expect.poll(purged, { timeout: 30_000 }).toBe(4);

      // Joined and heartbeating, fetching nothing.
      const inner = (consumer as unknown as { consumer: Consumer }).consumer;
      inner.pause([{ topic: names.topic }]);
      await send([5, 6, 7, 8, 9, 10]);
      await expect.poll(purged, { timeout: 30_000, interval: 200 }).toBe(10);
      expect(await metricValue(registry, 'walpurge_invalidator_consumer_stalls_total')).toBe(1);
      expect((consumer as unknown as { consumer: Consumer }).consumer).not.toBe(inner);
      // The gauge shows the brokers' lag, not the value left by the last batch.
      await expect
        .poll(() => metricValue(registry, 'walpurge_invalidator_consumer_lag_messages'), { timeout: 10_000 })
        .toBe(0);
    } finally {
      await producer.disconnect();
      await consumer.stop();
    }
  });

  it('is not what a transactional producer leaves: a commit marker past the last event, never committed', async () => {
    const { names, registry, purged, consumer, events } = await startConsumer('stall_markers');
    const producer = kafka.producer({
      transactionalId: uniqueName('stall_tx'),
      idempotent: true,
      maxInFlightRequests: 1,
    });
    await producer.connect();
    try {
      const transaction = await producer.transaction();
      await transaction.send({ topic: names.topic, acks: -1, messages: events([1, 2, 3, 4, 5, 6]) });
      await transaction.commit();
      await expect.poll(purged, { timeout: 30_000 }).toBe(6);
      // Three stall timeouts with the markers unconsumed by eachBatch: no restart.
      await new Promise((resolve) => setTimeout(resolve, 6_500));
      expect(await metricValue(registry, 'walpurge_invalidator_consumer_stalls_total')).toBe(0);
      expect(await metricValue(registry, 'walpurge_invalidator_consumer_lag_messages')).toBe(0);
    } finally {
      await producer.disconnect();
      await consumer.stop();
    }
  });

  it('a partition handed to another member leaves no lag series behind (it would show its last lag for ever)', async () => {
    const first = await startConsumer('lag_series');
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    const lagPartitions = async (registry: typeof first.registry) =>
      ((await registry.getSingleMetric('walpurge_invalidator_consumer_lag_messages')?.get())?.values ?? [])
        .map((value) => value.labels['partition'])
        .sort();
    try {
      await producer.send({
        topic: first.names.topic,
        acks: -1,
        messages: first.events([1, 2]).map((message, i) => ({ ...message, partition: i })),
      });
      await expect.poll(first.purged, { timeout: 30_000 }).toBe(2);
      await expect.poll(() => lagPartitions(first.registry), { timeout: 10_000 }).toEqual(['0', '1']);

      const second = await startConsumer('lag_series', first.names);
      try {
        const held = (consumer: ChangeConsumer) =>
          (consumer as unknown as { assigned: number[] }).assigned.length;
        await expect
          .poll(() => [held(first.consumer), held(second.consumer)], { timeout: 30_000 })
          .toEqual([1, 1]);
        await expect.poll(() => lagPartitions(second.registry), { timeout: 10_000 }).toHaveLength(1);
        // The group rebalanced: each member holds one partition and reports only its own.
        await expect
          .poll(
            async () =>
              [...(await lagPartitions(first.registry)), ...(await lagPartitions(second.registry))].sort(),
            {
              timeout: 30_000,
              interval: 200,
            },
          )
          .toEqual(['0', '1']);
      } finally {
        await second.consumer.stop();
      }
    } finally {
      await producer.disconnect();
      await first.consumer.stop();
    }
  });
});
