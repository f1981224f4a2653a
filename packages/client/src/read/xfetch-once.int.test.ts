import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { uniqueName, waitFor } from '@walpurge/testing';
import { createCacheClient } from './cache-client.js';

/**
 * XFetch's early refresh is one roll of the dice per read. With L1 in front, a read that L1 sent to
 * Redis because its roll said "refresh" must refresh: rolling again at the Redis level would make
 * the refresh probability p² instead of p (and ~0 far from expiry, where Redis' remaining TTL is
 * longer than L1's view of it).
 */
describe('XFetch with two levels', () => {
  const { redisUrl } = inject('services');
  let redis: Redis;

  beforeAll(async () => {
    redis = new Redis(redisUrl);
    await redis.ping();
  });
  afterAll(() => redis.disconnect());

  it('a refresh decided by the L1 roll happens, whatever a second roll would have said', async () => {
    const prefix = `${uniqueName('xfetch_once')}:`;
    let offsetMs = 0;
    // Rolls: u close to 1 (−ln(1−u) ≈ 20.7: "refresh") when queued, else 0 (−ln 1 = 0: "do not").
    const rolls: number[] = [];
    const client = createCacheClient({
      redis,
      keyPrefix: prefix,
      ttlJitter: 0,
      l1: { maxStalenessMs: 3_600_000 },
      now: () => Date.now() + offsetMs,
      random: () => rolls.shift() ?? 0,
    });
    try {
      expect(await client.ready()).toBeUndefined();
      let calls = 0;
      const loader = async () => {
        calls += 1;
        await new Promise((resolve) => setTimeout(resolve, 200)); // delta ≈ 200 ms
        return `v${calls}`;
      };
      expect(await client.get('k', loader, { ttl: 60 })).toBe('v1');
      await waitFor('the value to be served from L1', async () => {
        const { values } = await client.metrics.requests.get();
        await client.get('k', loader, { ttl: 60 });
        const hits = values.find((v) => v.labels['level'] === 'l1' && v.labels['result'] === 'hit');
        return (hits?.value ?? 0) > 0;
      });
      expect(calls).toBe(1);
      // L1 now sees under 2 s left: 200 ms · −ln(1e-9) ≈ 4.1 s ≥ that says "refresh". Redis still
      // has ~60 s left, and the next roll (0) says "do not".
      offsetMs = 58_000;
      rolls.push(1 - 1e-9);
      expect(await client.get('k', loader, { ttl: 60 })).toBe('v1');
      await waitFor('the early refresh to reload the value', async () => calls === 2, { timeoutMs: 3_000 });
      expect(await client.metrics.earlyRefreshes.get()).toMatchObject({ values: [{ value: 1 }] });
    } finally {
      await client.close();
      await redis.unlink(`${prefix}k`);
    }
  });
});
