import kafkajs, { type Admin } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createLogger } from '@walpurge/core';
import { uniqueName } from '@walpurge/testing';
import { StallWatchdog, type StallWatchdogOptions } from './stall-watchdog.js';

const services = inject('services');
let admin: Admin;
const kafka = new kafkajs.Kafka({ brokers: services.kafkaBrokers, logLevel: kafkajs.logLevel.NOTHING });

beforeAll(async () => {
  admin = kafka.admin();
  await admin.connect();
});
afterAll(async () => {
  await admin?.disconnect();
});

/** A topic of two partitions holding `counts[p]` records in partition p. */
async function topicWith(counts: [number, number]): Promise<string> {
  const topic = uniqueName('stall');
  await admin.createTopics({ topics: [{ topic, numPartitions: 2 }], waitForLeaders: true });
  const producer = kafka.producer();
  await producer.connect();
  for (const [partition, count] of counts.entries())
    if (count > 0)
      await producer.send({
        topic,
        messages: Array.from({ length: count }, (_, i) => ({ partition, value: String(i) })),
      });
  await producer.disconnect();
  return topic;
}

function watchdog(topic: string, groupId: string, overrides: Partial<StallWatchdogOptions> = {}) {
  const stalls: Array<Array<{ partition: number; lag: number }>> = [];
  const lags = new Map<number, number>();
  const dog = new StallWatchdog({
    admin,
    groupId,
    topic,
    stallAfterMs: 10_000,
    assigned: () => [0, 1],
    lastBatchAt: () => 0,
    fetchedUpTo: () => undefined,
    busy: () => false,
    onLag: (partition, lag) => lags.set(partition, lag),
    onStall: async (stalled) => void stalls.push(stalled.map(({ partition, lag }) => ({ partition, lag }))),
    logger: createLogger({ level: 'silent', pretty: false }),
    ...overrides,
  });
  return { dog, stalls, lags };
}

describe('StallWatchdog (real broker offsets)', () => {
  it('reports a held partition behind its high watermark for stallAfterMs with no batch, with its lag', async () => {
    const topic = await topicWith([5, 0]);
    const groupId = uniqueName('stall_group');
    await admin.setOffsets({ groupId, topic, partitions: [{ partition: 0, offset: '2' }] });
    const { dog, stalls, lags } = watchdog(topic, groupId);
    const t0 = Date.now();
    await dog.check(t0);
    expect(lags.get(0)).toBe(3);
    expect(lags.get(1)).toBe(0);
    await dog.check(t0 + 9_999);
    expect(stalls).toEqual([]);
    await dog.check(t0 + 10_000);
    expect(stalls).toEqual([[{ partition: 0, lag: 3 }]]);
  });

  it('a group that never committed counts from the beginning of the partition', async () => {
    const topic = await topicWith([0, 4]);
    const { dog, stalls, lags } = watchdog(topic, uniqueName('stall_group'));
    const t0 = Date.now();
    await dog.check(t0);
    await dog.check(t0 + 10_000);
    expect(lags.get(1)).toBe(4);
    expect(stalls).toEqual([[{ partition: 1, lag: 4 }]]);
  });

  it('is no stall: a batch in progress, a batch started meanwhile, progress, fetched to the end, a rebalance, no lag, or a partition not held', async () => {
    const topic = await topicWith([5, 5]);
    const groupId = uniqueName('stall_group');
    await admin.setOffsets({ groupId, topic, partitions: [{ partition: 0, offset: '1' }] });
    const t0 = Date.now();

    // A batch in progress (its target down, say): no stall, and its events still count as lag,
    // though fetched.
    const busy = watchdog(topic, groupId, { busy: () => true, fetchedUpTo: () => 5n });
    await busy.dog.check(t0);
    await busy.dog.check(t0 + 60_000);
    expect(busy.stalls).toEqual([]);
    expect(busy.lags.get(0)).toBe(4);

    const started = watchdog(topic, groupId, { lastBatchAt: () => t0 + 1 });
    await started.dog.check(t0);
    await started.dog.check(t0 + 60_000);
    expect(started.stalls).toEqual([]);

    const notHeld = watchdog(topic, groupId, { assigned: () => [] });
    await notHeld.dog.check(t0);
    await notHeld.dog.check(t0 + 60_000);
    expect(notHeld.stalls).toEqual([]);

    // Progress: the committed offset moved between the checks, so the clock starts again.
    const moving = watchdog(topic, groupId, { assigned: () => [0] });
    await moving.dog.check(t0);
    await admin.setOffsets({ groupId, topic, partitions: [{ partition: 0, offset: '3' }] });
    await moving.dog.check(t0 + 10_000);
    expect(moving.stalls).toEqual([]);
    await moving.dog.check(t0 + 20_000);
    expect(moving.stalls).toEqual([[{ partition: 0, lag: 2 }]]);

    // Fetched to the end, though not committed there: a batch of a transaction's commit marker
    // moves kafkajs's position but reaches no eachBatch and no commit.
    const markers = watchdog(topic, groupId, { assigned: () => [0], fetchedUpTo: () => 5n });
    await markers.dog.check(t0);
    await markers.dog.check(t0 + 60_000);
    expect(markers.stalls).toEqual([]);
    expect(markers.lags.get(0)).toBe(0);

    // After a rebalance the clock starts again.
    const rejoined = watchdog(topic, groupId, { assigned: () => [0] });
    await rejoined.dog.check(t0);
    rejoined.dog.reset();
    await rejoined.dog.check(t0 + 10_000);
    expect(rejoined.stalls).toEqual([]);

    // Caught up: no lag, no stall.
    await admin.setOffsets({ groupId, topic, partitions: [{ partition: 0, offset: '5' }] });
    const caughtUp = watchdog(topic, groupId, { assigned: () => [0] });
    await caughtUp.dog.check(t0);
    await caughtUp.dog.check(t0 + 60_000);
    expect(caughtUp.stalls).toEqual([]);
    expect(caughtUp.lags.get(0)).toBe(0);
  });
});
