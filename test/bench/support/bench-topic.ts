import { Kafka, logLevel, type Admin } from 'kafkajs';
import { sleep } from './report.js';

/**
 * A topic both systems write to the same way: the same partition count, and the broker's own append
 * time on every record, so the catch-up window (first change appended → last) is measured by one
 * clock that neither system controls.
 */
export async function createBenchTopic(brokers: string[], topic: string, partitions: number): Promise<void> {
  const admin = new Kafka({ brokers, logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    await admin.createTopics({
      waitForLeaders: true,
      topics: [
        {
          topic,
          numPartitions: partitions,
          replicationFactor: 1,
          configEntries: [{ name: 'message.timestamp.type', value: 'LogAppendTime' }],
        },
      ],
    });
  } finally {
    await admin.disconnect();
  }
}

export async function topicRecordCount(admin: Admin, topic: string): Promise<number> {
  const offsets = await admin.fetchTopicOffsets(topic);
  return offsets.reduce((sum, p) => sum + Number(p.high) - Number(p.low), 0);
}

export interface TopicProgress {
  /** performance.now() when the topic first held a record, and when it held them all. */
  firstSeenAt: number;
  lastSeenAt: number;
}

/**
 * Polls the topic's end offsets until it holds `expected` records, calling `onFirst` / `onLast` at
 * those two moments (where the caller samples the producing process's CPU). Fails if `alive` turns
 * false first or nothing new arrives for `stallMs`.
 */
export async function watchTopic(opts: {
  brokers: string[];
  topic: string;
  expected: number;
  alive: () => boolean;
  onFirst: () => void;
  onLast: () => void;
  stallMs?: number;
}): Promise<TopicProgress> {
  const admin = new Kafka({ brokers: opts.brokers, logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    let firstSeenAt: number | undefined;
    let seen = 0;
    let progressAt = performance.now();
    for (;;) {
      const count = await topicRecordCount(admin, opts.topic);
      const now = performance.now();
      if (count > 0 && firstSeenAt === undefined) {
        firstSeenAt = now;
        opts.onFirst();
      }
      if (count >= opts.expected) {
        opts.onLast();
        return { firstSeenAt: firstSeenAt ?? now, lastSeenAt: now };
      }
      if (count > seen) {
        seen = count;
        progressAt = now;
      }
      if (!opts.alive())
        throw new Error(
          `the producing process exited with ${seen} of ${opts.expected} records in ${opts.topic}`,
        );
      const stallMs = opts.stallMs ?? (firstSeenAt === undefined ? 180_000 : 60_000);
      if (now - progressAt > stallMs)
        throw new Error(
          `${opts.topic}: no progress for ${Math.round(stallMs / 1000)} s at ${seen} of ${opts.expected} records`,
        );
      await sleep(20);
    }
  } finally {
    await admin.disconnect();
  }
}

export interface ReadBack {
  records: number;
  distinctKeys: number;
  /** Records without a value (a tombstone or an empty message): none expected here. */
  emptyValues: number;
  /** Broker append times (LogAppendTime) of the first and last record, ms since the epoch. */
  firstAppendMs: number;
  lastAppendMs: number;
}

/** Reads the whole topic back (every partition up to its end offset when called). */
export async function readBackTopic(brokers: string[], topic: string): Promise<ReadBack> {
  const kafka = new Kafka({ brokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const ends = new Map<number, bigint>();
  try {
    for (const p of await admin.fetchTopicOffsets(topic)) ends.set(p.partition, BigInt(p.high));
  } finally {
    await admin.disconnect();
  }
  const remaining = new Set([...ends].filter(([, high]) => high > 0n).map(([partition]) => partition));
  const keys = new Set<string>();
  const result: ReadBack = {
    records: 0,
    distinctKeys: 0,
    emptyValues: 0,
    firstAppendMs: Infinity,
    lastAppendMs: -Infinity,
  };
  if (remaining.size === 0) return result;
  const consumer = kafka.consumer({
    groupId: `${topic}-readback-${process.pid}-${Date.now()}`,
    maxBytes: 64 * 1024 * 1024,
    maxBytesPerPartition: 16 * 1024 * 1024,
  });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    let finish: () => void = () => {};
    const done = new Promise<void>((resolve) => (finish = resolve));
    await consumer.run({
      autoCommit: false,
      partitionsConsumedConcurrently: ends.size,
      eachBatch: async ({ batch }) => {
        const end = ends.get(batch.partition) ?? 0n;
        for (const message of batch.messages) {
          if (BigInt(message.offset) >= end) break;
          result.records += 1;
          keys.add(message.key?.toString('latin1') ?? '');
          if (!message.value || message.value.length === 0) result.emptyValues += 1;
          const appended = Number(message.timestamp);
          if (appended < result.firstAppendMs) result.firstAppendMs = appended;
          if (appended > result.lastAppendMs) result.lastAppendMs = appended;
        }
        if (BigInt(batch.lastOffset()) >= end - 1n) {
          remaining.delete(batch.partition);
          if (remaining.size === 0) finish();
        }
      },
    });
    const timeout = setTimeout(finish, 300_000);
    await done;
    clearTimeout(timeout);
    if (remaining.size > 0)
      throw new Error(`reading ${topic} back timed out (partitions ${[...remaining].join(', ')} unfinished)`);
  } finally {
    await consumer.disconnect();
  }
  result.distinctKeys = keys.size;
  return result;
}
