import { Redis } from 'ioredis';
import { redisTlsOptions, type RedisConnection } from '@walpurge/config';
import type { TlsSettings } from '@walpurge/core';
import { redisUnavailable } from './connection-errors.js';

/** host:port of a Redis URL, password-free, for messages. */
export function describeRedis(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.hostname}:${parsed.port || '6379'}`;
  } catch {
    return 'the configured address';
  }
}

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
    throw redisUnavailable(socketError ?? error, what, describeRedis(connection.url), tlsSettings);
  }
  return redis;
}
