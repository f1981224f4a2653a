import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ErrorCode, WalpurgeError } from '@walpurge/core';
import { startLocalRedis, type LocalRedis } from '@walpurge/testing';
import { inspectQueueRedis } from './queue-redis-safety.js';
import { createFixture } from './test-support/fixture.js';

/** The start-up check of the queue Redis: an evicting or non-persistent Redis silently loses writes. */
const services = inject('services');
let server: LocalRedis;
let admin: Redis;

beforeAll(async () => {
  server = await startLocalRedis({ persistent: true });
  admin = new Redis(server.url);
});
afterAll(async () => {
  admin?.disconnect();
  await server?.stop();
});

describe('queue Redis safety check', () => {
  it('accepts noeviction + AOF', async () => {
    await admin.config('SET', 'maxmemory-policy', 'noeviction');
    expect(await inspectQueueRedis(admin)).toEqual({
      maxmemoryPolicy: 'noeviction',
      appendonly: true,
      problems: [],
    });
  });

  it('refuses an evicting (LRU cache) Redis with a clear error, and starts when allowed', async () => {
    await admin.config('SET', 'maxmemory-policy', 'allkeys-lru');
    const f = await createFixture({
      databaseAdminUrl: services.databaseUrl,
      cacheRedisUrl: services.redisUrl,
      queueRedisUrl: server.url,
    });
    try {
      const error = await f.startFlusher().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(WalpurgeError);
      expect(error).toMatchObject({
        code: ErrorCode.RedisUnsafeForQueue,
        retriable: false,
        message: expect.stringMatching(/maxmemory-policy is allkeys-lru \(must be noeviction/),
        hint: expect.stringMatching(/allowUnsafeRedis/),
      });
      expect((error as Error).message).not.toMatch(/appendonly/); // AOF is on: only the real problem is named
      const flusher = await f.startFlusher({ allowUnsafeRedis: true });
      expect(flusher.isReady()).toBe(true);
    } finally {
      await f.close();
      await admin.config('SET', 'maxmemory-policy', 'noeviction');
    }
  });

  it('names both problems when the Redis neither persists nor keeps keys', async () => {
    await admin.config('SET', 'maxmemory-policy', 'volatile-ttl');
    await admin.config('SET', 'appendonly', 'no');
    try {
      const { problems } = await inspectQueueRedis(admin);
      expect(problems).toEqual([
        expect.stringMatching(/^maxmemory-policy is volatile-ttl/),
        expect.stringMatching(/^appendonly is off/),
      ]);
    } finally {
      await admin.config('SET', 'appendonly', 'yes');
      await admin.config('SET', 'maxmemory-policy', 'noeviction');
    }
  });
});
