import { Redis } from 'ioredis';
import { redisAddress, redisTlsAttempt, redisTlsOptions, type RedisConnection } from '@walpurge/config';
import type { TlsSettings } from '@walpurge/core';
import { redisUnavailable } from './connection-errors.js';

/**
 * One connection for a one-shot operator command: fails fast with a one-line error instead of
 * ioredis' default of reconnecting (and queueing commands) forever.
 */
export async function connectOnce(
  connection: RedisConnection,
  what: string,
  tlsSettings: TlsSettings,
): Promise<Redis> {
  const redis = new Redis(connection.url, {
    ...redisTlsOptions(connection),
    lazyConnect: true,
    connectTimeout: 3_000,
    maxRetriesPerRequest: 1,
    retryStrategy: () => null,
  });
  // Without retries, connect() rejects with "Connection is closed."; the socket error says why.
  let socketError: unknown;
  redis.on('error', (error: unknown) => (socketError ??= error));
  try {
    await redis.connect();
  } catch (error) {
    redis.disconnect();
    throw redisUnavailable(socketError ?? error, what, redisAddress(connection.url), tlsSettings, {
      attempt: redisTlsAttempt(connection),
    });
  }
  return redis;
}
