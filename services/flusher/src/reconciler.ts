import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import {
  FLUSH_JOB_NAME,
  MARK_FAILED_SCRIPT,
  WriteScript,
  flushJobId,
  flushJobOptions,
  parsePendingWrite,
  stableJson,
  type FlushJobData,
  type WriteBehindLayout,
} from '@walpurge/client';

const markFailed = new WriteScript(MARK_FAILED_SCRIPT);

export interface ReconcileOptions {
  redis: Redis;
  queue: Queue<FlushJobData>;
  layout: WriteBehindLayout;
  attempts: number;
  /** Skip entries younger than this: their writer is most likely adding the job right now. */
  minAgeMs: number;
  pageSize?: number;
}

/**
 * Accepting a write and queueing its job are two steps (Lua script, then BullMQ add); so are settling
 * a row and re-queueing it. A crash between them leaves a pending row without a job. This sweep finds
 * such rows through the pending index and queues their job (same id: a no-op if it exists after all).
 * Rows whose job failed for good are left alone (listFailedWrites/redrive), only marked as failed.
 * Returns how many jobs it queued.
 */
export async function reconcilePending(options: ReconcileOptions): Promise<number> {
  const { redis, queue, layout } = options;
  const pageSize = options.pageSize ?? 500;
  const cutoff = Date.now() - options.minAgeMs;
  let requeued = 0;
  for (let offset = 0; ; offset += pageSize) {
    const rowIds = await redis.zrangebyscore(layout.index, '-inf', cutoff, 'LIMIT', offset, pageSize);
    for (const rowId of rowIds) {
      const entry = parsePendingWrite(rowId, await redis.hgetall(layout.pending(rowId)));
      if (!entry) {
        await redis.zrem(layout.index, rowId);
        continue;
      }
      const jobId = entry.queuedJobId ?? flushJobId(rowId, entry.version);
      const state = await queue.getJobState(jobId);
      if (state === 'failed') {
        if (!entry.failedJobId) await markFailed.run(redis, [layout.pending(rowId)], [jobId]);
        continue;
      }
      if (state !== 'unknown') continue;
      if (!entry.queuedJobId) await redis.hset(layout.pending(rowId), 'q', jobId);
      const data: FlushJobData = { rowId, table: entry.table, key: stableJson(entry.primaryKey) };
      await queue.add(FLUSH_JOB_NAME, data, flushJobOptions(jobId, options.attempts));
      requeued += 1;
    }
    if (rowIds.length < pageSize) return requeued;
  }
}
