import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type pg from 'pg';
import {
  parsePendingWrite,
  sqlTable,
  type FlushJobData,
  type WriteBehindLayout,
} from '@walpurge/write-behind';

/**
 * Versions are µs from the queue Redis's clock (never below it, see NEXT_VERSION), and a pending
 * entry's oldest-write time is ms from Redis (accept) or from a flusher host (requeue after settle).
 * This much slack covers skew between those clocks.
 */
const CLOCK_SLACK_MS = 3_600_000;

export interface TombstonePruneOptions {
  client: pg.ClientBase;
  redis: Redis;
  layout: WriteBehindLayout;
  tombstoneTable: string;
  retentionMs: number;
}

/**
 * Deletes tombstones older than retentionMs, but never one that still guards a write waiting in
 * the queue: a failed write kept for redrive (or a backlog from a long outage) may be older than a
 * delete, and without the tombstone its redrive would resurrect the deleted row. Every pending
 * entry (failed ones included) stays in the index with the time of its oldest write, and its
 * version is at least that time in µs: tombstones with a version from then on are kept.
 * Returns how many were deleted.
 */
export async function pruneTombstones(options: TombstonePruneOptions): Promise<number> {
  const oldest = await options.redis.zrange(options.layout.index, 0, 0, 'WITHSCORES');
  const oldestPendingMs = oldest[1] === undefined ? undefined : Number(oldest[1]);
  const versionBound =
    oldestPendingMs === undefined
      ? null
      : String(BigInt(Math.max(0, oldestPendingMs - CLOCK_SLACK_MS)) * 1000n);
  const result = await options.client.query(
    `DELETE FROM ${sqlTable(options.tombstoneTable)}
      WHERE deleted_at < now() - make_interval(secs => $1)
        AND ($2::bigint IS NULL OR version < $2::bigint)`,
    [options.retentionMs / 1000, versionBound],
  );
  return result.rowCount ?? 0;
}

export interface FailedJobPruneOptions {
  redis: Redis;
  queue: Queue<FlushJobData>;
  layout: WriteBehindLayout;
  retentionMs: number;
  /** At most this many failed jobs are looked at per run. */
  limit?: number;
}

/**
 * Removes failed flush jobs that failed more than retentionMs ago and no longer stand for an
 * unwritten value: the row's pending entry is gone (a later write was flushed) or names another
 * job (a newer write has its own). A failed job that is still the row's only record of an accepted
 * write is kept until it is redriven: pruning it would drop that write silently.
 * Returns how many were removed.
 */
export async function pruneFailedJobs(options: FailedJobPruneOptions): Promise<number> {
  const { redis, queue, layout } = options;
  const cutoff = Date.now() - options.retentionMs;
  // BullMQ scores the failed set by the time the job finished.
  const jobIds = await redis.zrangebyscore(
    queue.toKey('failed'),
    '-inf',
    cutoff,
    'LIMIT',
    0,
    options.limit ?? 1_000,
  );
  let removed = 0;
  for (const jobId of jobIds) {
    const job = await queue.getJob(jobId);
    if (!job) continue;
    const pending = parsePendingWrite(job.data.rowId, await redis.hgetall(layout.pending(job.data.rowId)));
    const superseded = !pending || (pending.queuedJobId !== jobId && pending.failedJobId !== jobId);
    if (!superseded) continue;
    await job.remove();
    removed += 1;
  }
  return removed;
}
