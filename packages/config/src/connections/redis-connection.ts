import type { ConnectionOptions } from 'node:tls';
import { redisTlsProblem, type RedisTlsConfig } from '../schema/tls.js';
import { readPemFile } from './pem-file.js';

/** What a Redis connection needs: the URL and its optional TLS section. */
export interface RedisConnection {
  url: string;
  tls?: RedisTlsConfig | undefined;
  /** Where its TLS options live, for messages; `redis.tls` unless told. */
  tlsSection?: string;
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
  const problem = redisTlsProblem(connection.url, connection.tls);
  if (problem) throw new Error(`Redis ${problem}`);
  if (!/^rediss:\/\//i.test(connection.url)) return {};
  const settings = connection.tls;
  const tls: ConnectionOptions = {};
  const section = connection.tlsSection ?? 'redis.tls';
  if (settings?.ca !== undefined) tls.ca = readPemFile(settings.ca, 'certificate', `${section}.ca`);
  if (settings?.cert !== undefined) tls.cert = readPemFile(settings.cert, 'certificate', `${section}.cert`);
  if (settings?.key !== undefined) tls.key = readPemFile(settings.key, 'private key', `${section}.key`);
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
  return { url: flusher.queueRedisUrl, tls: flusher.queueRedisTls, tlsSection: 'flusher.queueRedisTls' };
}
