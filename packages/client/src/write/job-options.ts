import type { JobsOptions } from 'bullmq';

/**
 * Options of every flush job, whoever queues it (client, worker re-queue, reconciler). Completed
 * jobs are removed (their ids carry a version, so an id is never needed again); failed ones are kept
 * until redriven: a failed write must stay visible, never vanish.
 */
export function flushJobOptions(jobId: string, attempts: number): JobsOptions {
  return {
    jobId,
    removeOnComplete: true,
    removeOnFail: false,
    attempts,
    backoff: { type: 'exponential', delay: 1_000 },
  };
}

export const DEFAULT_FLUSH_ATTEMPTS = 10;
