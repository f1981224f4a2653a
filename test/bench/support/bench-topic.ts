import { Kafka, logLevel, type Admin } from 'kafkajs';
import { z } from 'zod';
import { sleep } from './report.js';

/**
 * A topic both systems write to the same way: the same partition count, and the broker's own append
 * time on every record, so the catch-up window (first change appended → last) is measured by one
 * clock that neither system controls.
 */
export async function createBenchTopic(
  brokers: string[],
  topic: string,
  partitions: number,
  /** Topic-level settings beside the append time, e.g. a larger max.message.bytes. */
  extraConfig: Record<string, string> = {},
): Promise<void> {
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
          configEntries: [
            { name: 'message.timestamp.type', value: 'LogAppendTime' },
            ...Object.entries(extraConfig).map(([name, value]) => ({ name, value })),
          ],
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
  /** Gives up this long after the call, however it progresses. */
  timeoutMs: number;
}): Promise<TopicProgress> {
  const admin = new Kafka({ brokers: opts.brokers, logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    let firstSeenAt: number | undefined;
    let seen = 0;
    const startedAt = performance.now();
    let progressAt = startedAt;
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
      if (now - startedAt > opts.timeoutMs)
        throw new Error(
          `${opts.topic}: ${seen} of ${opts.expected} records after the time limit of ${Math.round(opts.timeoutMs / 1000)} s`,
        );
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

/**
 * The part of a change record both formats share: walpurge's protocol v1 and Debezium's JSON envelope
 * each carry the new row as `after`. The benchmark's tables have columns id and v (v counts the row's
 * updates), so (id, v) names one change: a lost change or a replayed duplicate shows in their count.
 * walpurge sends int8 values as strings (no precision loss), Debezium as numbers: both are accepted.
 */
const Integer = z.union([z.number().int(), z.string().regex(/^-?\d+$/)]);
const ChangeRecordValue = z.object({ after: z.object({ id: Integer, v: Integer }) });

export interface ReadBack {
  records: number;
  /** Distinct (after.id, after.v) among the records. */
  distinctChanges: number;
  /** Records whose value has no `after` row with integer id and v (a tombstone, another shape). */
  unreadable: number;
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
  const changes = new Set<string>();
  const result: ReadBack = {
    records: 0,
    distinctChanges: 0,
    unreadable: 0,
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
          const parsed = message.value ? parseChange(message.value) : undefined;
          if (parsed) changes.add(`${String(parsed.after.id)}:${String(parsed.after.v)}`);
          else result.unreadable += 1;
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
  result.distinctChanges = changes.size;
  return result;
}

function parseChange(value: Buffer): z.infer<typeof ChangeRecordValue> | undefined {
  try {
    const parsed = ChangeRecordValue.safeParse(JSON.parse(value.toString('utf8')));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
