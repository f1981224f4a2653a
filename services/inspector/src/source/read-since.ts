import { randomBytes } from 'node:crypto';
import type { KafkaConfig } from '@walpurge/config';
import type { Logger } from '@walpurge/core';
import { createKafka } from '@walpurge/kafka';
import type { ChangeEvent } from '@walpurge/protocol';
import type { InspectMetrics } from '../metrics.js';
import { decodeMessages } from './kafka-source.js';

export interface ReadProgress {
  read: number;
  total: number;
  /** Read but not handed over: committed less than `minAgeMs` before they were read. */
  tooRecent: number;
}

/**
 * `walpurge inspect --once --since`: the change topic from the offsets at `sinceMs` to the end
 * offsets taken at start, handed over batch by batch. A throwaway consumer group (deleted after):
 * the observer's own group and the invalidator's keep their offsets. Changes committed less than
 * `minAgeMs` (the smallest timescale) before they are read are skipped and counted: their purges
 * may still be in flight, and checking them now would call them inconsistent.
 */
export async function readChangesSince(options: {
  kafka: KafkaConfig;
  groupPrefix: string;
  sinceMs: number;
  minAgeMs: number;
  onBatch: (events: ChangeEvent[]) => Promise<void>;
  onProgress?: (progress: ReadProgress) => void;
  metrics: InspectMetrics;
  logger?: Logger;
}): Promise<ReadProgress> {
  const { topic } = options.kafka;
  const kafka = createKafka(options.kafka, {
    clientSuffix: 'inspect-once',
    ...(options.logger ? { logger: options.logger } : {}),
  });
  const admin = kafka.admin();
  await admin.connect();
  const groupId = `${options.groupPrefix}-once-${randomBytes(4).toString('hex')}`;
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 500 });
  try {
    const starts = await admin.fetchTopicOffsetsByTimestamp(topic, options.sinceMs);
    const ends = await admin.fetchTopicOffsets(topic);
    // Per partition: the next offset to read and the end (exclusive) fixed now.
    const remaining = new Map<number, { next: bigint; end: bigint }>();
    let total = 0n;
    for (const { partition, offset } of starts) {
      const end = BigInt(ends.find((e) => e.partition === partition)?.high ?? '0');
      const start = BigInt(offset === '-1' ? end : BigInt(offset));
      if (start < end) {
        remaining.set(partition, { next: start, end });
        total += end - start;
      }
    }
    const progress = { read: 0, total: Number(total), tooRecent: 0 };
    if (remaining.size === 0) return progress;
    let finish: () => void = () => {};
    let fail: (error: unknown) => void = () => {};
    const done = new Promise<void>((resolve, reject) => {
      finish = resolve;
      fail = reject;
    });
    consumer.on(consumer.events.CRASH, (event) => fail(event.payload.error));
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        const window = remaining.get(batch.partition);
        if (!window) return;
        const messages = batch.messages.filter(
          (m) => BigInt(m.offset) >= window.next && BigInt(m.offset) < window.end,
        );
        const cutoff = Date.now() - options.minAgeMs;
        const events = decodeMessages(messages, options.metrics);
        const old = events.filter((event) => Date.parse(event.source.commitTs) <= cutoff);
        progress.tooRecent += events.length - old.length;
        await options.onBatch(old);
        const last = batch.messages[batch.messages.length - 1];
        if (last) window.next = BigInt(last.offset) + 1n;
        progress.read += messages.length;
        options.onProgress?.({ ...progress });
        if (window.next >= window.end) remaining.delete(batch.partition);
        if (remaining.size === 0) finish();
      },
    });
    for (const [partition, { next }] of remaining)
      consumer.seek({ topic, partition, offset: next.toString() });
    // Partitions with nothing in the window: at their end and paused, or the new group (from the
    // beginning) would fetch their whole history only to drop it.
    const idle = starts.map((s) => s.partition).filter((partition) => !remaining.has(partition));
    for (const partition of idle) {
      const end = ends.find((e) => e.partition === partition)?.high ?? '0';
      consumer.seek({ topic, partition, offset: end });
    }
    if (idle.length > 0) consumer.pause([{ topic, partitions: idle }]);
    await done;
    return progress;
  } finally {
    await consumer.disconnect().catch(() => undefined);
    await admin.deleteGroups([groupId]).catch(() => undefined);
    await admin.disconnect().catch(() => undefined);
  }
}
