import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { parsePendingWrite, writeBehindLayout, type FlushJobData } from '@walpurge/write-behind';
import { queueRedisConnection, redisTlsOptions, type WalpurgeConfig } from '@walpurge/config';
import { requireFlusherConfig } from './flusher.js';

export interface FailedWrite {
  jobId: string;
  table: string;
  /** Primary key, JSON. */
  key: string;
  reason: string;
  failedAt: Date | undefined;
  attemptsMade: number;
  /** Version still waiting in the queue Redis for this row, if any. */
  pendingVersion: string | undefined;
  /** True when no pending write is left for the row, or a newer write has a job of its own. */
  superseded: boolean;
}

export interface FailedWritesOptions {
  config: WalpurgeConfig;
  /** Reuse a connection to the queue Redis instead of opening one. */
  redis?: Redis;
}

async function withQueue<T>(
  options: FailedWritesOptions,
  fn: (queue: Queue<FlushJobData>, redis: Redis) => Promise<T>,
): Promise<T> {
  const { flusher } = requireFlusherConfig(options.config);
  const redis =
    options.redis ??
    new Redis(flusher.queueRedisUrl, {
      ...redisTlsOptions(queueRedisConnection(flusher)),
      maxRetriesPerRequest: 3,
    });
  const queue = new Queue<FlushJobData>(flusher.queueName, {
    connection: redis,
    prefix: writeBehindLayout(flusher.keyPrefix).bullPrefix,
  });
  try {
    return await fn(queue, redis);
  } finally {
    await queue.close();
    if (!options.redis) await redis.quit().catch(() => redis.disconnect());
  }
}

/** Write-behind rows that failed for good (constraint violation, unknown column …), newest first. */
export async function listFailedWrites(
  options: FailedWritesOptions & { limit?: number },
): Promise<FailedWrite[]> {
  const { flusher } = requireFlusherConfig(options.config);
  const layout = writeBehindLayout(flusher.keyPrefix);
  return withQueue(options, async (queue, redis) => {
    const jobs = await queue.getFailed(0, (options.limit ?? 100) - 1);
    const result: FailedWrite[] = [];
    for (const job of jobs) {
      if (!job?.id) continue;
      const pending = parsePendingWrite(job.data.rowId, await redis.hgetall(layout.pending(job.data.rowId)));
      result.push({
        jobId: job.id,
        table: job.data.table,
        key: job.data.key,
        reason: job.failedReason,
        failedAt: job.finishedOn ? new Date(job.finishedOn) : undefined,
        attemptsMade: job.attemptsMade,
        pendingVersion: pending?.version,
        superseded:
          !pending ||
          (pending.queuedJobId !== undefined &&
            pending.queuedJobId !== job.id &&
            pending.failedJobId !== job.id),
      });
    }
    return result;
  });
}

/**
 * Puts failed writes back in the queue (all, or the given job ids), e.g. after the constraint or the
 * schema was fixed. Each run writes the row's LATEST pending value, guarded by version as always.
 */
export async function redriveFailedWrites(
  options: FailedWritesOptions & { jobIds?: readonly string[] },
): Promise<{ redriven: string[] }> {
  const { flusher } = requireFlusherConfig(options.config);
  const layout = writeBehindLayout(flusher.keyPrefix);
  return withQueue(options, async (queue, redis) => {
    const jobs = options.jobIds
      ? await Promise.all(options.jobIds.map((id) => queue.getJob(id)))
      : await queue.getFailed(0, -1);
    const redriven: string[] = [];
    for (const job of jobs) {
      if (!job?.id || !(await job.isFailed())) continue;
      await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
      // The row's job is alive again: new writes may wait for it instead of queueing another.
      const pendingKey = layout.pending(job.data.rowId);
      if ((await redis.hget(pendingKey, 'f')) === job.id) {
        await redis.multi().hdel(pendingKey, 'f').hset(pendingKey, 'q', job.id).exec();
      }
      redriven.push(job.id);
    }
    return { redriven };
  });
}
