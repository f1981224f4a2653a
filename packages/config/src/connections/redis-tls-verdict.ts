import { ErrorCode, REDIS_TLS, tlsError, type TlsSettings, type WalpurgeError } from '@walpurge/core';
import { redisAddress, redisTlsAttempt, type RedisConnection } from './redis-connection.js';

/** The cache Redis unless told: `what` and `settings` of its one-line TLS failure. */
export interface RedisTlsWhere {
  what: string;
  settings: TlsSettings;
}

const CACHE_REDIS: RedisTlsWhere = { what: 'the cache Redis', settings: REDIS_TLS };

/**
 * A Redis TLS failure as one line, or undefined for other errors. Before a connection has worked a
 * certificate verdict (untrusted, wrong name, expired, client certificate refused) is not
 * retriable; after, and for resets and timeouts, it is.
 */
export function redisTlsError(
  error: unknown,
  connection: RedisConnection,
  connectedBefore: boolean,
  where: RedisTlsWhere = CACHE_REDIS,
): WalpurgeError | undefined {
  return tlsError(error, ErrorCode.RedisUnavailable, {
    ...where,
    address: redisAddress(connection.url),
    attempt: redisTlsAttempt(connection),
    connectedBefore,
  });
}

/** The part of an ioredis Redis or Cluster a first connection is watched through. */
interface ConnectingClient {
  readonly status: string;
  on(event: 'ready' | 'error', listener: (value?: unknown) => void): unknown;
  off(event: 'ready' | 'error', listener: (value?: unknown) => void): unknown;
}

/**
 * Waits for the first outcome of a client connecting in the background. A verdict on the
 * certificate rejects with its one line: retrying never fixes it, so a start stops instead of
 * retrying forever. Any other failure (the server is down) resolves: the client keeps reconnecting.
 */
export async function refuseRedisTlsVerdict(
  client: ConnectingClient,
  connection: RedisConnection,
  where: RedisTlsWhere = CACHE_REDIS,
): Promise<void> {
  if (client.status === 'ready') return;
  const error = await new Promise<unknown>((resolve) => {
    const onReady = (): void => settle(undefined);
    const onError = (failure: unknown): void => settle(failure);
    const settle = (outcome: unknown): void => {
      client.off('ready', onReady);
      client.off('error', onError);
      resolve(outcome);
    };
    client.on('ready', onReady);
    client.on('error', onError);
  });
  const failure = error === undefined ? undefined : redisTlsError(error, connection, false, where);
  if (failure && !failure.retriable) throw failure;
}
