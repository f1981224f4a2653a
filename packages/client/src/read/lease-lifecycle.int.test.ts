import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { uniqueName, waitFor } from '@walpurge/testing';
import { createCacheClient } from './cache-client.js';
import { getOrLeaseScript, releaseLeaseScript } from './lua-scripts.js';
import { startRedisProxy } from './test-fixtures/redis-proxy.js';

/** Leases must never outlive their use, and never damage what the write side stored in the entry. */
describe('lease lifecycle', () => {
  const { redisUrl } = inject('services');
  let admin: Redis;

  beforeAll(async () => {
    admin = new Redis(redisUrl);
    await admin.ping();
  });
  afterAll(() => admin.disconnect());

  it("a lease taken over a write-side delete tombstone neither shortens the tombstone's TTL nor removes it", async () => {
    const prefix = `${uniqueName('lease_tomb')}:`;
    const redis = new Redis(redisUrl);
    await redis.ping();
    const client = createCacheClient({ redis, keyPrefix: prefix, earlyRefreshBeta: 0 });
    try {
      // What deleteBehind leaves: a hash with only the write version, kept for the write-side TTL.
      await admin.hset(`${prefix}user:1`, 'wv', '700');
      await admin.pexpire(`${prefix}user:1`, 600_000);
      let releaseLoader!: () => void;
      const loading = new Promise<void>((resolve) => (releaseLoader = resolve));
      let inLoader = false;
      const read = client.get(
        'user:1',
        async () => {
          inLoader = true;
          await loading;
          throw new Error('database unavailable');
        },
        { ttl: 60 },
      );
      await waitFor('the loader to run', async () => inLoader, { timeoutMs: 5_000 });
      // While the lease is held: the tombstone keeps its version and (nearly) all of its TTL.
      expect(await admin.hget(`${prefix}user:1`, 'wv')).toBe('700');
      expect(await admin.pttl(`${prefix}user:1`)).toBeGreaterThan(300_000);
      releaseLoader();
      await expect(read).rejects.toThrow('database unavailable');
      // The failed loader gave its lease back without taking the tombstone with it.
      expect(await admin.hgetall(`${prefix}user:1`)).toEqual({ wv: '700' });
      expect(await admin.pttl(`${prefix}user:1`)).toBeGreaterThan(300_000);
    } finally {
      await client.close();
      redis.disconnect();
      await admin.unlink(`${prefix}user:1`);
    }
  });

  it('a lookup that timed out gives back the lease Redis granted, so other readers do not wait for it', async () => {
    const prefix = `${uniqueName('lease_timeout')}:`;
    // Loaded up front: the timed-out EVALSHA must find its script, its NOSCRIPT reply would be lost.
    await admin.script('LOAD', getOrLeaseScript);
    await admin.script('LOAD', releaseLeaseScript);
    const proxy = await startRedisProxy(redisUrl);
    const redis = new Redis(proxy.url);
    await redis.ping();
    const client = createCacheClient({
      redis,
      keyPrefix: prefix,
      redisTimeoutMs: 200,
      leases: { ttlMs: 60_000 },
    });
    try {
      expect(await client.get('warm', async () => 'w', { ttl: 60 })).toBe('w');
      proxy.mute(0); // requests still reach Redis; its replies never come back
      expect(await client.get('user:2', async () => 'from the loader', { ttl: 60 })).toBe('from the loader');
      // Redis did run the lookup and grant the lease; the client must hand it back, not leave it
      // blocking every other reader of the key for the lease TTL (60 s here).
      await waitFor('the lease to be given back', async () => (await admin.exists(`${prefix}user:2`)) === 0, {
        timeoutMs: 5_000,
      });
    } finally {
      await client.close();
      redis.disconnect();
      await proxy.close();
      await admin.unlink(`${prefix}warm`);
    }
  });
});
