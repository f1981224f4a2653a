/**
 * BullMQ job options, spelled out so this package needs no bullmq: the structure is a subset of
 * bullmq's `JobsOptions`, which type-checks it where a job is added.
 */
export interface FlushJobOptions {
  jobId: string;
  removeOnComplete: true;
  removeOnFail: false;
  attempts: number;
  backoff: { type: 'exponential'; delay: number };
}

/**
 * Options of every flush job, whoever queues it (client, worker re-queue, reconciler). Completed
 * jobs are removed (their ids carry a version, so an id is never needed again); failed ones are kept
 * until redriven: a failed write must stay visible, never vanish.
 */
export function flushJobOptions(jobId: string, attempts: number): FlushJobOptions {
  return {
    jobId,
    removeOnComplete: true,
    removeOnFail: false,
    attempts,
    backoff: { type: 'exponential', delay: 1_000 },
  };
}

export const DEFAULT_FLUSH_ATTEMPTS = 10;
