import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import {
  FLUSH_JOB_NAME,
  MARK_FAILED_SCRIPT,
  LuaScript,
  flushJobOptions,
  stringArrayReply,
  type FlushJobData,
  type WriteBehindLayout,
} from '@walpurge/write-behind';

const markFailed = new LuaScript(MARK_FAILED_SCRIPT);

export interface MarkFailedContext {
  redis: Redis;
  queue: Queue<FlushJobData>;
  layout: WriteBehindLayout;
  attempts: number;
}

export type MarkFailedOutcome = 'failed' | 'gone' | 'superseded' | 'requeued';

/**
 * Records that a row's job failed for good with `version`, or, when a newer write was accepted for
 * the row meanwhile (it waited for this job), queues the job that flushes that newer write. See
 * MARK_FAILED_SCRIPT.
 */
export async function markFailedOrRequeue(
  context: MarkFailedContext,
  data: FlushJobData,
  jobId: string,
  version: string,
): Promise<MarkFailedOutcome> {
  const reply = stringArrayReply(
    await markFailed.run(context.redis, [context.layout.pending(data.rowId)], [jobId, version, data.rowId]),
    'mark failed',
  );
  if (reply[0] === 'requeue' && reply[1]) {
    await context.queue.add(FLUSH_JOB_NAME, data, flushJobOptions(reply[1], context.attempts));
    return 'requeued';
  }
  if (reply[0] === 'failed' || reply[0] === 'gone' || reply[0] === 'superseded') return reply[0];
  throw new Error(`unexpected reply from mark failed: ${JSON.stringify(reply)}`);
}

/** The version a flush job was queued for (its id is `<rowId>-<version>`, see flushJobId). */
export function versionOfJobId(jobId: string): string {
  return jobId.slice(jobId.lastIndexOf('-') + 1);
}
