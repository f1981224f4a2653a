import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import {
  FLUSH_JOB_NAME,
  flushJobId,
  flushJobOptions,
  parsePendingWrite,
  stableJson,
  type FlushJobData,
  type PendingWrite,
  type WriteBehindLayout,
} from '@walpurge/write-behind';
import { markFailedOrRequeue, versionOfJobId } from './mark-failed.js';

export interface ReconcileOptions {
  redis: Redis;
  queue: Queue<FlushJobData>;
  layout: WriteBehindLayout;
  attempts: number;
  /** Skip entries younger than this: their writer is most likely adding the job right now. */
  minAgeMs: number;
  pageSize?: number;
}

export interface ReconcileResult {
  /** Pending rows that had no job and got one. */
  requeued: number;
  /** Rows whose job had failed without being marked on the entry (marked now, or requeued). */
  marked: number;
}

/**
 * Accepting a write and queueing its job are two steps (Lua script, then BullMQ add); so are settling
 * a row and re-queueing it. A crash between them leaves a pending row without a job. This sweep finds
 * such rows through the pending index and queues their job (same id: a no-op if it exists after all).
 * Rows whose job failed for good are left alone (listFailedWrites/redrive), only marked as failed.
 *
 * It runs during outages too, when the backlog is large and the queue Redis is under stress, so each
 * row costs O(1) there: EXISTS on the job's hash (completed jobs are removed, see flushJobOptions, so
 * a job that exists is waiting, delayed, active or failed) and, only for jobs that exist, ZSCORE in the
 * failed set. Never a scan of BullMQ's lists (getJobState uses LPOS over whole lists). Pipelined per
 * page.
 */
export async function reconcilePending(options: ReconcileOptions): Promise<ReconcileResult> {
  const { redis, queue, layout } = options;
  const pageSize = options.pageSize ?? 500;
  const cutoff = Date.now() - options.minAgeMs;
  const result: ReconcileResult = { requeued: 0, marked: 0 };
  for (let offset = 0; ; offset += pageSize) {
    const rowIds = await redis.zrangebyscore(layout.index, '-inf', cutoff, 'LIMIT', offset, pageSize);
    const entries = await readEntries(redis, layout, rowIds);
    const states = await jobStates(redis, queue, entries);
    for (const [i, entry] of entries.entries()) {
      const rowId = rowIds[i]!;
      if (!entry) {
        await redis.zrem(layout.index, rowId);
        continue;
      }
      const jobId = jobIdOf(entry);
      const data: FlushJobData = { rowId, table: entry.table, key: stableJson(entry.primaryKey) };
      const state = states[i];
      if (state === 'failed') {
        if (!entry.failedJobId) {
          const context = { redis, queue, layout, attempts: options.attempts };
          await markFailedOrRequeue(context, data, jobId, versionOfJobId(jobId));
          result.marked += 1;
        }
        continue;
      }
      if (state === 'exists') continue;
      if (!entry.queuedJobId) await redis.hset(layout.pending(rowId), 'q', jobId);
      await queue.add(FLUSH_JOB_NAME, data, flushJobOptions(jobId, options.attempts));
      result.requeued += 1;
    }
    if (rowIds.length < pageSize) return result;
  }
}

function jobIdOf(entry: PendingWrite): string {
  return entry.queuedJobId ?? flushJobId(entry.rowId, entry.version);
}

async function readEntries(
  redis: Redis,
  layout: WriteBehindLayout,
  rowIds: readonly string[],
): Promise<Array<PendingWrite | undefined>> {
  if (rowIds.length === 0) return [];
  const pipeline = redis.pipeline();
  for (const rowId of rowIds) pipeline.hgetall(layout.pending(rowId));
  const replies = (await pipeline.exec()) ?? [];
  return rowIds.map((rowId, i) => {
    const [error, hash] = replies[i] ?? [new Error('no reply'), undefined];
    if (error) throw error;
    return parsePendingWrite(rowId, hash as Record<string, string>);
  });
}

type JobState = 'missing' | 'exists' | 'failed' | undefined;

async function jobStates(
  redis: Redis,
  queue: Queue<FlushJobData>,
  entries: ReadonlyArray<PendingWrite | undefined>,
): Promise<JobState[]> {
  const pipeline = redis.pipeline();
  for (const entry of entries) {
    if (!entry) continue;
    const jobId = jobIdOf(entry);
    pipeline.exists(queue.toKey(jobId));
    pipeline.zscore(queue.toKey('failed'), jobId);
  }
  const replies = (await pipeline.exec()) ?? [];
  let at = 0;
  return entries.map((entry) => {
    if (!entry) return undefined;
    const [existsError, exists] = replies[at] ?? [new Error('no reply'), undefined];
    const [failedError, failedScore] = replies[at + 1] ?? [new Error('no reply'), undefined];
    at += 2;
    if (existsError) throw existsError;
    if (failedError) throw failedError;
    if (Number(exists) === 0) return 'missing';
    return failedScore === null ? 'exists' : 'failed';
  });
}
