import type { Cluster, Redis } from 'ioredis';
import { connectRedis, redisAddress, redisTlsAttempt, type RedisConfig } from '@walpurge/config';
import { REDIS_TLS, type Logger } from '@walpurge/core';
import { redisUnavailable } from '../live/connection-errors.js';

/**
 * The cache Redis as the invalidator connects to it, checked with a PING so an unreachable server
 * is one clear line ("cannot reach the cache Redis at host:port: connection refused") before any
 * work starts. The caller disconnects it.
 */
export async function openCacheRedis(config: RedisConfig, logger: Logger): Promise<Redis | Cluster> {
  const client = connectRedis(config, logger);
  // ioredis rejects with "max retries" while its 'error' events carry the socket's reason.
  let socketError: unknown;
  const onError = (error: unknown): void => void (socketError ??= error);
  client.on('error', onError);
  try {
    await client.ping();
    return client;
  } catch (error) {
    client.disconnect();
    throw redisUnavailable(socketError ?? error, 'the cache Redis', redisAddress(config.url), REDIS_TLS, {
      attempt: redisTlsAttempt(config),
    });
  } finally {
    client.off('error', onError);
  }
}
