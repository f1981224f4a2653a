import { Kafka, logLevel, type Admin } from 'kafkajs';
import { sleep } from './report.js';

export interface GroupCatchUp {
  /** performance.now() when the measured window opened and when everything was committed. */
  startedAt: number;
  endedAt: number;
  /** Offsets committed within the window: the changes it measures. */
  changes: number;
  /** Offsets already committed at the first poll that saw a commit (outside the window). */
  before: number;
}

/** Offsets the group has committed on `topic`, summed over its partitions (a fresh topic starts at 0). */
async function committed(admin: Admin, groupId: string, topic: string): Promise<number> {
  const [offsets] = await admin.fetchOffsets({ groupId, topics: [topic] });
  return (offsets?.partitions ?? []).reduce((sum, p) => sum + Math.max(0, Number(p.offset)), 0);
}

/**
 * Watches a consumer group catch up a backlog of `expected` records on a fresh topic, through the
 * offsets it commits: an invalidator commits a chunk only after its purges succeeded, so committed
 * offsets count purged changes, for the price of one admin request per poll and no Redis traffic.
 *
 * The window opens at the first poll that sees a commit (the first purge) and closes at the one that
 * sees all `expected` committed; the changes committed before it opened are left out (`before`).
 * `onStart` / `onEnd` run at those two moments (where the caller samples the processes' CPU). Fails
 * if `alive` turns false, nothing is committed for `stallMs`, or after `timeoutMs`.
 */
export async function watchGroupCatchUp(opts: {
  brokers: string[];
  groupId: string;
  topic: string;
  expected: number;
  alive: () => boolean;
  onStart: () => void;
  onEnd: () => void;
  stallMs?: number;
  timeoutMs: number;
}): Promise<GroupCatchUp> {
  const admin = new Kafka({ brokers: opts.brokers, logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    const startedWatching = performance.now();
    let window: { startedAt: number; before: number } | undefined;
    let seen = 0;
    let progressAt = startedWatching;
    for (;;) {
      const count = await committed(admin, opts.groupId, opts.topic);
      const now = performance.now();
      if (window === undefined && count > 0) {
        if (count >= opts.expected)
          throw new Error(
            `${opts.groupId}: all ${opts.expected} changes were committed between two polls: raise BENCH_CHANGES`,
          );
        window = { startedAt: now, before: count };
        opts.onStart();
      }
      if (window !== undefined && count >= opts.expected) {
        opts.onEnd();
        return { ...window, endedAt: now, changes: count - window.before };
      }
      if (count > seen) {
        seen = count;
        progressAt = now;
      }
      if (!opts.alive())
        throw new Error(`an invalidator exited with ${seen} of ${opts.expected} changes committed`);
      const stallMs = opts.stallMs ?? (seen === 0 ? 120_000 : 60_000);
      if (now - startedWatching > opts.timeoutMs)
        throw new Error(
          `${opts.groupId}: ${seen} of ${opts.expected} changes committed after the time limit of ${Math.round(opts.timeoutMs / 1000)} s`,
        );
      if (now - progressAt > stallMs)
        throw new Error(
          `${opts.groupId}: nothing committed for ${Math.round(stallMs / 1000)} s at ${seen} of ${opts.expected} changes`,
        );
      await sleep(50);
    }
  } finally {
    await admin.disconnect();
  }
}

/** Benchmarks create uniquely named groups on a possibly shared broker: remove them once their members left. */
export async function deleteGroup(brokers: string[], groupId: string): Promise<void> {
  const admin = new Kafka({ brokers, logLevel: logLevel.NOTHING }).admin();
  try {
    await admin.connect();
    await admin.deleteGroups([groupId]);
  } catch {
    // Best effort: an empty group's offsets expire on their own (offsets.retention.minutes).
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}
