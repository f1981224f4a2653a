import { ErrorCode, WalpurgeError } from '@walpurge/core';
import type * as LocalServers from '@walpurge/testing';

/**
 * The local-process servers of the test environment. A development dependency: loaded only when
 * quickstart has to start its own servers, so production installs (the container image) do not
 * ship the test tooling.
 */
async function loadLocalServers(): Promise<typeof LocalServers> {
  try {
    return await import('@walpurge/testing');
  } catch (error) {
    throw new WalpurgeError(
      ErrorCode.ConfigEnvMissing,
      'quickstart cannot start a local PostgreSQL and Redis from a production install',
      {
        cause: error,
        hint: 'set DATABASE_URL and REDIS_URL to use your own servers, or run `npm start` in a checkout of walpurge',
      },
    );
  }
}

export interface DemoStack {
  databaseUrl: string;
  redisUrl: string;
  /** What this process started ("PostgreSQL 127.0.0.1:5433 (wal_level=logical)"), for the banner. */
  started: string[];
  /** Set when this process started the PostgreSQL (anything else is the user's and needs consent). */
  startedDatabaseUrl?: string;
  /** Set when this process started the Redis. */
  startedRedisUrl?: string;
  /** Stops only what it started; idempotent. */
  stop(): Promise<void>;
}

/**
 * DATABASE_URL / REDIS_URL when given; otherwise throw-away local servers from the binaries on this
 * machine (the test environment's local-process path): PostgreSQL with logical WAL, and Redis.
 */
export async function provideDemoStack(
  env: Record<string, string | undefined>,
  log: (line: string) => void,
): Promise<DemoStack> {
  const stops: Array<() => Promise<void>> = [];
  const started: string[] = [];
  const stop = async (): Promise<void> => {
    for (const fn of stops.splice(0).reverse()) await fn().catch(() => {});
  };
  try {
    const givenDb = env['DATABASE_URL'];
    const givenRedis = env['REDIS_URL'];
    const servers = givenDb && givenRedis ? undefined : await loadLocalServers();
    const [postgres, redis] = await Promise.all([
      givenDb ? undefined : servers?.startLocalPostgres({ log }),
      givenRedis ? undefined : servers?.startLocalRedis({ log }),
    ]);
    if (postgres) {
      stops.push(() => postgres.stop());
      started.push(`PostgreSQL on 127.0.0.1:${postgres.port} (wal_level=logical, data in a temp dir)`);
    }
    if (redis) {
      stops.push(() => redis.stop());
      started.push(`Redis on 127.0.0.1:${redis.port}`);
    }
    const databaseUrl = givenDb ?? postgres?.url;
    const redisUrl = givenRedis ?? redis?.url;
    if (!databaseUrl || !redisUrl) throw new Error('no database or Redis URL');
    let stopped: Promise<void> | undefined;
    return {
      databaseUrl,
      redisUrl,
      started,
      ...(postgres ? { startedDatabaseUrl: postgres.url } : {}),
      ...(redis ? { startedRedisUrl: redis.url } : {}),
      stop: () => (stopped ??= stop()),
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
