/**
 * Changes that leave the change topic before this group purged them (retention, a deleted and
 * re-created topic) can never be purged. kafkajs moves on from the log's new start without a word;
 * the invalidator must count and report every such gap, and purge everything still in the log.
 */
import kafkajs from 'kafkajs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Registry } from '@walpurge/core';
import { encodeChangeEvent, messageKey } from '@walpurge/protocol';
import { changeEvent, invalidatorConfig, metricValue, uniqueNames, type Names } from '../../test/harness.js';
import { startRecordingConsumer } from '../../test/recording-consumer.js';

const services = inject('services');
const kafka = new kafkajs.Kafka({ brokers: services.kafkaBrokers, logLevel: kafkajs.logLevel.NOTHING });
let admin: kafkajs.Admin;
let producer: kafkajs.Producer;

beforeAll(async () => {
  admin = kafka.admin();
  await admin.connect();
  producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
  await producer.connect();
});
afterAll(async () => {
  await producer?.disconnect();
  await admin?.disconnect();
});

const send = (topic: string, ids: number[]) =>
  producer.send({
    topic,
    acks: -1,
    messages: ids.map((id) => {
      const event = changeEvent('u', 'items', { key: { id }, before: null, after: { id } });
      return { key: messageKey(event), value: encodeChangeEvent(event), partition: 0 };
    }),
  });

/** A ChangeConsumer of `names`' one-partition topic and group, recording the ids it purges. */
function startConsumer(
  names: Names,
  target: { held?: Promise<void>; entered?: () => void } = {},
  topicIds?: null,
) {
  const config = invalidatorConfig(services, names, {
    partitions: 1,
    invalidator: { stallTimeoutMs: 60_000, maxBatchEvents: 2 },
  });
  return startRecordingConsumer(kafka, config, {
    beforePurge: async () => {
      target.entered?.();
      await target.held;
    },
    ...(topicIds === null ? { topicIds } : {}),
  });
}

const createTopic = (topic: string) =>
  admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });

/** What retention does to a log's oldest segments. Retried: a partition just written may refuse it for a moment. */
async function deleteRecordsBefore(topic: string, offset: number): Promise<void> {
  await expect
    .poll(
      () =>
        admin
          .deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: String(offset) }] })
          .then(() => true)
          .catch(() => false),
      { timeout: 20_000, interval: 500 },
    )
    .toBe(true);
}

async function recreateTopic(topic: string): Promise<void> {
  await admin.deleteTopics({ topics: [topic] });
  await expect.poll(async () => (await admin.listTopics()).includes(topic), { timeout: 30_000 }).toBe(false);
  // The broker may still be removing the old log for a moment.
  await expect
    .poll(
      () =>
        createTopic(topic)
          .then(() => true)
          .catch(() => false),
      { timeout: 30_000 },
    )
    .toBe(true);
}

const gaps = (registry: Registry, reason: string) =>
  metricValue(registry, 'walpurge_invalidator_change_log_gaps_total', { reason });

describe('changes that left the change topic before they were purged', () => {
  it('removed by retention while the invalidator was away: counted, then the rest purged', async () => {
    const names = uniqueNames('gap_retention');
    await createTopic(names.topic);
    const first = await startConsumer(names);
    await send(names.topic, [1, 2, 3, 4]);
    await expect.poll(() => first.handled.length, { timeout: 30_000 }).toBe(4);
    await first.consumer.stop();

    await send(names.topic, [5, 6, 7, 8, 9, 10]);
    // What retention does to the oldest segments: offsets 4..6 (ids 5, 6, 7) are gone unpurged.
    await deleteRecordsBefore(names.topic, 7);

    const second = await startConsumer(names);
    try {
      await expect.poll(() => second.handled.length, { timeout: 30_000 }).toBe(3);
      expect(second.handled).toEqual([8, 9, 10]);
      await expect
        .poll(() => metricValue(second.registry, 'walpurge_invalidator_lost_changes_total'), {
          timeout: 10_000,
        })
        .toBe(3);
      expect(await gaps(second.registry, 'removed')).toBe(1);
    } finally {
      await second.consumer.stop();
    }
  });

  it('removed by retention while a running invalidator waited on a purge target: counted, then the rest purged', async () => {
    const names = uniqueNames('gap_lagging');
    await createTopic(names.topic);
    let release = (): void => undefined;
    let entered = (): void => undefined;
    const purging = new Promise<void>((resolve) => (entered = resolve));
    const target = { held: new Promise<void>((resolve) => (release = resolve)), entered };
    const consumer = await startConsumer(names, target);
    try {
      await send(names.topic, [1, 2]);
      await purging;
      await send(names.topic, [3, 4, 5, 6, 7, 8]);
      // Offsets 0 and 1 are being purged; 2..5 expire meanwhile, before they were fetched.
      await deleteRecordsBefore(names.topic, 6);
      release();
      await expect.poll(() => consumer.handled.length, { timeout: 30_000 }).toBe(4);
      expect(consumer.handled).toEqual([1, 2, 7, 8]);
      await expect
        .poll(() => metricValue(consumer.registry, 'walpurge_invalidator_lost_changes_total'), {
          timeout: 10_000,
        })
        .toBe(4);
      expect(await gaps(consumer.registry, 'removed')).toBe(1);
    } finally {
      await consumer.consumer.stop();
    }
  });

  it('a topic re-created shorter under a running invalidator: reported, and the new log purged from its start', async () => {
    const names = uniqueNames('gap_rewound');
    await createTopic(names.topic);
    // Offsets alone, as with brokers without topic IDs (before Kafka 2.8): the new ID would be found too.
    const consumer = await startConsumer(names, {}, null);
    try {
      await send(names.topic, [1, 2, 3, 4, 5, 6]);
      await expect.poll(() => consumer.handled.length, { timeout: 30_000 }).toBe(6);
      await recreateTopic(names.topic);
      await send(names.topic, [11, 12]);
      await expect.poll(() => consumer.handled.length, { timeout: 40_000 }).toBe(8);
      expect(consumer.handled.slice(6)).toEqual([11, 12]);
      await expect.poll(() => gaps(consumer.registry, 'rewound'), { timeout: 10_000 }).toBe(1);
      expect(await metricValue(consumer.registry, 'walpurge_invalidator_lost_changes_total')).toBe(0);
    } finally {
      await consumer.consumer.stop();
    }
  });

  it("a topic re-created under a running invalidator, its new log past the group's position: found by its new ID, read from its start", async () => {
    const names = uniqueNames('gap_replaced');
    await createTopic(names.topic);
    const consumer = await startConsumer(names);
    try {
      await send(names.topic, [1, 2, 3, 4, 5, 6]);
      await expect.poll(() => consumer.handled.length, { timeout: 30_000 }).toBe(6);
      await recreateTopic(names.topic);
      // Ten records: kafkajs would fetch on at offset 6 of the new log, skipping 11 to 16.
      await send(names.topic, [11, 12, 13, 14, 15, 16, 17, 18, 19, 20]);
      const fromNewLog = () => [...new Set(consumer.handled.filter((id) => Number(id) > 10))].sort();
      await expect
        .poll(fromNewLog, { timeout: 30_000, interval: 200 })
        .toEqual([11, 12, 13, 14, 15, 16, 17, 18, 19, 20]);
      await expect.poll(() => gaps(consumer.registry, 'replaced'), { timeout: 10_000 }).toBe(1);
    } finally {
      await consumer.consumer.stop();
    }
  });

  it('a topic re-created while the invalidator was away: the group starts the new log at its start', async () => {
    const names = uniqueNames('gap_recreated_away');
    await createTopic(names.topic);
    const first = await startConsumer(names);
    await send(names.topic, [1, 2, 3, 4, 5, 6]);
    await expect.poll(() => first.handled.length, { timeout: 30_000 }).toBe(6);
    await first.consumer.stop();

    // Kafka drops a deleted topic's committed offsets with it: nothing points into the new log.
    await recreateTopic(names.topic);
    await send(names.topic, [11, 12, 13, 14, 15, 16, 17, 18, 19, 20]);
    const second = await startConsumer(names);
    try {
      await expect.poll(() => second.handled.length, { timeout: 30_000 }).toBe(10);
      expect(second.handled).toEqual([11, 12, 13, 14, 15, 16, 17, 18, 19, 20]);
    } finally {
      await second.consumer.stop();
    }
  });

  it('transaction markers between events are not a gap', async () => {
    const names = uniqueNames('gap_markers');
    await createTopic(names.topic);
    const consumer = await startConsumer(names);
    const transactional = kafka.producer({
      transactionalId: `${names.topic}_tx`,
      idempotent: true,
      maxInFlightRequests: 1,
    });
    await transactional.connect();
    try {
      for (const ids of [[1, 2], [3], [4, 5]]) {
        const transaction = await transactional.transaction();
        await transaction.send({
          topic: names.topic,
          acks: -1,
          messages: ids.map((id) => {
            const event = changeEvent('u', 'items', { key: { id }, before: null, after: { id } });
            return { key: messageKey(event), value: encodeChangeEvent(event), partition: 0 };
          }),
        });
        await transaction.commit();
      }
      await expect.poll(() => consumer.handled.length, { timeout: 30_000 }).toBe(5);
      await consumer.consumer.stop();
      // And across a restart: the committed offset sits before the last marker.
      const again = await startConsumer(names);
      await send(names.topic, [6]);
      await expect.poll(() => again.handled.length, { timeout: 30_000 }).toBe(1);
      await again.consumer.stop();
      for (const registry of [consumer.registry, again.registry]) {
        expect(await gaps(registry, 'removed')).toBe(0);
        expect(await gaps(registry, 'rewound')).toBe(0);
      }
    } finally {
      await transactional.disconnect();
    }
  });
});
