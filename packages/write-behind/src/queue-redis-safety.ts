import type { Redis } from 'ioredis';
import { ErrorCode, WalpurgeError } from '@walpurge/core';

export interface QueueRedisSafety {
  maxmemoryPolicy: string | undefined;
  appendonly: boolean | undefined;
  problems: string[];
}

function infoField(info: string, field: string): string | undefined {
  const line = info.split(/\r?\n/).find((l) => l.startsWith(`${field}:`));
  return line?.slice(field.length + 1).trim();
}

/**
 * A queue Redis that evicts keys or keeps nothing on disk silently loses accepted writes. INFO works
 * on managed Redis too (where CONFIG is often disabled).
 */
export async function inspectQueueRedis(redis: Redis): Promise<QueueRedisSafety> {
  const [memory, persistence] = await Promise.all([redis.info('memory'), redis.info('persistence')]);
  const maxmemoryPolicy = infoField(memory, 'maxmemory_policy');
  const aof = infoField(persistence, 'aof_enabled');
  const appendonly = aof === undefined ? undefined : aof === '1';
  const problems: string[] = [];
  if (maxmemoryPolicy !== 'noeviction') {
    problems.push(
      `maxmemory-policy is ${maxmemoryPolicy ?? 'unknown'} (must be noeviction: other policies evict queued writes under memory pressure)`,
    );
  }
  if (appendonly !== true) {
    problems.push('appendonly is off (accepted writes since the last snapshot are lost when Redis restarts)');
  }
  return { maxmemoryPolicy, appendonly, problems };
}

export async function assertQueueRedisSafe(redis: Redis): Promise<void> {
  const { problems } = await inspectQueueRedis(redis);
  if (problems.length === 0) return;
  throw new WalpurgeError(
    ErrorCode.RedisUnsafeForQueue,
    `the write-behind queue Redis would lose writes: ${problems.join('; ')}`,
    {
      hint:
        'use a Redis with `maxmemory-policy noeviction` and `appendonly yes` for flusher.queueRedisUrl (never the LRU cache Redis), ' +
        'or set flusher.allowUnsafeRedis: true to accept losing writes',
    },
  );
}
