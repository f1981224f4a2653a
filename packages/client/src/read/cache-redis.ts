import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { redisClusterSeed, redisTlsOptions, type RedisConnection } from '@walpurge/config';

/** The cache Redis: one server, or a Redis Cluster (`redis.cluster: true` in walpurge.yaml). */
export type CacheRedis = Redis | Cluster;

/**
 * A connection the client owns, from a URL: a standalone server, or (cluster) a seed node from
 * which the rest of the cluster is discovered. Credentials in the URL and TLS (rediss://, `redis.tls`)
 * apply to every node.
 */
export function connectCacheRedis(
  connection: RedisConnection,
  cluster: boolean,
  timeoutMs: number,
  /** offlineQueue: queue commands while connecting (writers) instead of failing them (readers fail open). */
  { offlineQueue = false }: { offlineQueue?: boolean } = {},
): CacheRedis {
  const options: RedisOptions = {
    ...(timeoutMs > 0 ? { commandTimeout: timeoutMs } : {}),
    maxRetriesPerRequest: 1,
    // Readers: commands issued while disconnected fail at once (→ loader) instead of queueing.
    enableOfflineQueue: offlineQueue,
    connectionName: 'walpurge-client',
  };
  if (!cluster) return new Redis(connection.url, { ...options, ...redisTlsOptions(connection) });
  const { seed, redisOptions } = redisClusterSeed(connection);
  return new Cluster([seed], {
    enableOfflineQueue: offlineQueue,
    redisOptions: { ...options, ...redisOptions },
  });
}

/** A key prefix the connection itself would add (it would hide keys from tag sets and tracking). */
export function ownKeyPrefix(redis: CacheRedis): string | undefined {
  if (redis.isCluster) {
    const { options } = redis as Cluster;
    return options.keyPrefix || options.redisOptions?.keyPrefix || undefined;
  }
  return (redis as Redis).options.keyPrefix || undefined;
}
