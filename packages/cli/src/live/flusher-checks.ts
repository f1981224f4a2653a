import type { Redis } from 'ioredis';
import type pg from 'pg';
import { describeWriteTable } from '@walpurge/write-behind';
import {
  queueRedisConnection,
  redisTlsAttempt,
  type ConfigProblem,
  type WalpurgeConfig,
} from '@walpurge/config';
import { QUEUE_REDIS_TLS, errorMessage, isWalpurgeError, tlsFailure } from '@walpurge/core';
import { inspectQueueRedis } from '@walpurge/flusher';
import { connectOnce } from './queue-redis.js';

type ProblemAt = (path: ReadonlyArray<PropertyKey>, message: string) => ConfigProblem;

/**
 * The flusher section without connecting: what the flusher role would refuse at start-up, or could
 * not honour while running.
 */
export function flusherConfigProblems(
  config: WalpurgeConfig,
  problemAt: ProblemAt,
): { problems: ConfigProblem[]; warnings: ConfigProblem[] } {
  const problems: ConfigProblem[] = [];
  const warnings: ConfigProblem[] = [];
  const flusher = config.flusher;
  if (!flusher) return { problems, warnings };
  if (!config.database)
    problems.push(problemAt(['flusher'], 'the flusher writes to PostgreSQL: add a `database` section'));
  if (!config.redis)
    warnings.push(
      problemAt(
        ['flusher'],
        'no `redis` section: a write-behind value PostgreSQL refuses stays in the cache until its TTL (the flusher cannot purge it)',
      ),
    );
  if (flusher.retryInitialMs > flusher.retryMaxMs)
    problems.push(
      problemAt(['flusher', 'retryInitialMs'], `is above flusher.retryMaxMs (${flusher.retryMaxMs})`),
    );
  if (flusher.allowUnsafeRedis)
    warnings.push(
      problemAt(['flusher', 'allowUnsafeRedis'], 'the queue Redis may evict or lose accepted writes'),
    );
  return { problems, warnings };
}

/** Each table in flusher.tables must exist with a primary key and a bigint version column. */
export async function flusherTableProblems(
  client: pg.Client,
  config: WalpurgeConfig,
  problemAt: ProblemAt,
): Promise<ConfigProblem[]> {
  const flusher = config.flusher;
  if (!flusher) return [];
  const problems: ConfigProblem[] = [];
  for (const [i, table] of flusher.tables.entries()) {
    try {
      await describeWriteTable(client, table, flusher.versionColumn);
    } catch (error) {
      if (!isWalpurgeError(error)) throw error;
      const hint = error.hint ? ` (${error.hint})` : '';
      problems.push(problemAt(['flusher', 'tables', i], `${error.message}${hint}`));
    }
  }
  return problems;
}

/**
 * The queue Redis must keep what it accepted (noeviction, AOF), as the flusher checks at start-up,
 * unless allowUnsafeRedis. Unreachable is a problem too: the flusher would not start.
 */
export async function queueRedisProblems(
  config: WalpurgeConfig,
  problemAt: ProblemAt,
): Promise<ConfigProblem[]> {
  const flusher = config.flusher;
  if (!flusher || flusher.allowUnsafeRedis) return [];
  const queue = queueRedisConnection(flusher);
  let redis: Redis;
  try {
    redis = await connectOnce(queue, 'the queue Redis', QUEUE_REDIS_TLS);
  } catch (error) {
    // A TLS verdict is a matter of queueRedisTls when it is set; anything else, of the URL.
    const cause = error instanceof Error ? error.cause : undefined;
    const tls = tlsFailure(cause ?? error, redisTlsAttempt(queue)) !== undefined;
    return [
      problemAt(
        ['flusher', tls && flusher.queueRedisTls ? 'queueRedisTls' : 'queueRedisUrl'],
        errorMessage(error),
      ),
    ];
  }
  try {
    const { problems } = await inspectQueueRedis(redis);
    return problems.map((problem) => problemAt(['flusher', 'queueRedisUrl'], `queue Redis: ${problem}`));
  } finally {
    redis.disconnect();
  }
}
