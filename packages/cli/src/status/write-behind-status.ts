import { writeBehindLayout } from '@walpurge/write-behind';
import { queueRedisConnection, type WalpurgeConfig } from '@walpurge/config';
import { QUEUE_REDIS_TLS } from '@walpurge/core';
import { listFailedWrites } from '@walpurge/flusher';
import { connectOnce } from '../live/queue-redis.js';

export interface WriteBehindStatus {
  /** Rows with a write accepted but not yet in PostgreSQL. */
  pending: number;
  oldestPendingAgeMs: number | null;
  /** Failed writes kept for redrive (capped at FAILED_LIMIT). */
  failed: number;
  failedCapped: boolean;
}

const FAILED_LIMIT = 1_000;

/** Reads the queue Redis the same way the flusher's metrics do (pending index: row → accepted-at score). */
export async function readWriteBehindStatus(
  config: WalpurgeConfig,
  now = Date.now(),
): Promise<WriteBehindStatus | null> {
  if (!config.flusher) return null;
  const layout = writeBehindLayout(config.flusher.keyPrefix);
  const redis = await connectOnce(queueRedisConnection(config.flusher), 'the queue Redis', QUEUE_REDIS_TLS);
  try {
    const [pending, oldest] = await Promise.all([
      redis.zcard(layout.index),
      redis.zrange(layout.index, 0, 0, 'WITHSCORES'),
    ]);
    const failed = await listFailedWrites({ config, redis, limit: FAILED_LIMIT });
    const oldestScore = oldest[1] === undefined ? undefined : Number(oldest[1]);
    return {
      pending,
      oldestPendingAgeMs: oldestScore === undefined ? null : Math.max(0, now - oldestScore),
      failed: failed.length,
      failedCapped: failed.length >= FAILED_LIMIT,
    };
  } finally {
    redis.disconnect();
  }
}
