import type { Redis } from 'ioredis';

/**
 * Deletes every key under `prefix` (SCAN MATCH + UNLINK, never KEYS; glob characters in the prefix
 * are escaped). Suites and benchmarks share one Redis: keys left behind would slow every later
 * pattern purge, which walks the whole keyspace.
 */
export async function deleteRedisKeys(redis: Redis, prefix: string): Promise<void> {
  const match = `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', match, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await redis.unlink(...keys);
  } while (cursor !== '0');
}
