import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { LogThrottle, type Logger } from '@walpurge/core';
import type { RedisConfig } from '../schema/redis.js';
import { redisClusterSeed, redisTlsOptions } from './redis-connection.js';

/**
 * The cache Redis, as the invalidator purges it and the observer and `walpurge purge` read it. Commands fail fast while it is unreachable (the purge loop owns retries and
 * backoff, and counts them); the client keeps reconnecting in the background.
 */
export function connectRedis(config: RedisConfig, logger: Logger): Redis | Cluster {
  const base: RedisOptions = {
    maxRetriesPerRequest: 1,
    connectTimeout: 5_000,
    enableAutoPipelining: true,
    retryStrategy: (attempt) => Math.min(100 * 2 ** attempt, 2_000),
    lazyConnect: false,
  };
  let client: Redis | Cluster;
  if (config.cluster) {
    const { seed, redisOptions } = redisClusterSeed(config);
    client = new Cluster([seed], { enableAutoPipelining: true, redisOptions: { ...base, ...redisOptions } });
  } else {
    client = new Redis(config.url, { ...base, ...redisTlsOptions(config) });
  }
  // ioredis emits an error per reconnect attempt; once every 10 s is enough to see an outage.
  const throttle = new LogThrottle(10_000);
  client.on('error', (error: unknown) => {
    const count = throttle.take();
    if (count > 0) logger.warn({ err: error, count }, 'cache Redis connection error');
  });
  return client;
}
