import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import type { RedisTlsConfig } from '../schema/tls.js';

/** What a Redis connection needs: the URL and its optional TLS section. */
export interface RedisConnection {
  url: string;
  tls?: RedisTlsConfig | undefined;
}

/** The part of ioredis' options a connection's TLS decides: `tls` for rediss:// URLs, nothing else. */
export interface RedisTlsOptions {
  tls?: ConnectionOptions;
}

/**
 * The one place that turns a Redis URL + TLS section into ioredis options. Spread them into the
 * options of `new Redis(url, …)` or into a Cluster's `redisOptions` (every node then uses them,
 * `servername` included).
 */
export function redisTlsOptions(connection: RedisConnection): RedisTlsOptions {
  if (!/^rediss:\/\//i.test(connection.url)) {
    if (connection.tls !== undefined)
      throw new Error('Redis TLS settings need a rediss:// URL (redis:// connects without TLS)');
    return {};
  }
  const settings = connection.tls;
  const tls: ConnectionOptions = {};
  if (settings?.ca !== undefined) tls.ca = readFileSync(settings.ca, 'utf8');
  if (settings?.cert !== undefined) tls.cert = readFileSync(settings.cert, 'utf8');
  if (settings?.key !== undefined) tls.key = readFileSync(settings.key, 'utf8');
  if (settings?.servername !== undefined) tls.servername = settings.servername;
  return { tls };
}

/** Seed node and per-node options of a Redis Cluster named by `url` (credentials from the URL). */
export function redisClusterSeed(connection: RedisConnection): {
  seed: { host: string; port: number };
  redisOptions: RedisTlsOptions & { username?: string; password?: string };
} {
  const url = new URL(connection.url);
  return {
    seed: { host: url.hostname, port: Number(url.port || 6379) },
    redisOptions: {
      ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
      ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
      ...redisTlsOptions(connection),
    },
  };
}

/** Whether the connection uses TLS and presents a client certificate (to explain its failures). */
export function redisTlsAttempt(connection: RedisConnection): { tls: boolean; clientCertificate: boolean } {
  return { tls: /^rediss:\/\//i.test(connection.url), clientCertificate: connection.tls?.cert !== undefined };
}

/** `host:port` of a Redis URL, for error messages. */
export function redisAddress(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.hostname}:${parsed.port || '6379'}`;
  } catch {
    return 'the configured address';
  }
}

/** The flusher's queue Redis as a connection (`flusher.queueRedisUrl` + `flusher.queueRedisTls`). */
export function queueRedisConnection(flusher: {
  queueRedisUrl: string;
  queueRedisTls?: RedisTlsConfig | undefined;
}): RedisConnection {
  return { url: flusher.queueRedisUrl, tls: flusher.queueRedisTls };
}
