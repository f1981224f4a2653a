import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Registry } from '@walpurge/core';
import { uniqueName, waitFor } from '@walpurge/testing';
import { createCacheClient } from './cache-client.js';

/**
 * Read-side metrics as a scrape sees them: per level hits and misses; stale served, lease
 * waits, loader calls and fill rejections. Each is produced on purpose and then asserted.
 */
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('cache client metrics', () => {
  const { redisUrl } = inject('services');
  let redis: Redis;
  let admin: Redis;

  beforeAll(async () => {
    redis = new Redis(redisUrl);
    admin = new Redis(redisUrl);
    await Promise.all([redis.ping(), admin.ping()]);
  });
  afterAll(() => {
    redis.disconnect();
    admin.disconnect();
  });

  it('count hits and misses per level, stale served, lease waits, loader calls and fill rejections', async () => {
    const prefix = `${uniqueName('metrics')}:`;
    const registry = new Registry();
    const options = {
      redis,
      keyPrefix: prefix,
      registry,
      earlyRefreshBeta: 0,
      ttlJitter: 0,
      coalesce: false,
    };
    const withL1 = createCacheClient({ ...options, l1: { maxStalenessMs: 60_000 } });
    const plain = createCacheClient(options);
    await withL1.ready();
    const value = async (name: string, labels: Record<string, string> = {}) => {
      const metric = await registry.getSingleMetric(name)?.get();
      return (
        metric?.values.find((v) => Object.entries(labels).every(([k, want]) => v.labels[k] === want))
          ?.value ?? 0
      );
    };
    try {
      // L1 miss + Redis miss → loader; then an L1 hit; a second process-like client hits Redis.
      expect(await withL1.get('a', async () => 'A', { ttl: 60 })).toBe('A');
      await waitFor('a in L1', async () => {
        await withL1.get('a', async () => 'not called', { ttl: 60 });
        return (await value('walpurge_client_requests_total', { level: 'l1', result: 'hit' })) > 0;
      });
      expect(await plain.get('a', async () => 'not called', { ttl: 60 })).toBe('A');

      // Stale served inside the stale-while-revalidate window.
      await plain.get('s', async () => 'S1', { ttl: 0.05, staleWhileRevalidate: 60 });
      await sleep(100);
      expect(await plain.get('s', async () => 'S2', { ttl: 0.05, staleWhileRevalidate: 60 })).toBe('S1');

      // A lease wait: the second caller finds the first one's lease and waits for its fill; the
      // first loader returns only once the second caller is counted as waiting.
      let loaderStarted!: () => void;
      const started = new Promise<void>((resolve) => (loaderStarted = resolve));
      const first = plain.get(
        'w',
        async () => {
          loaderStarted();
          await waitFor(
            'a caller waiting on the lease',
            async () => (await value('walpurge_client_lease_waits_total')) === 1,
          );
          return 'W';
        },
        { ttl: 60 },
      );
      await started;
      const second = plain.get('w', async () => 'not called', { ttl: 60 });
      expect(await Promise.all([first, second])).toEqual(['W', 'W']);

      // A fill rejection: the key is purged while its loader runs.
      await plain.get(
        'r',
        async () => {
          await admin.unlink(`${prefix}r`);
          return 'R';
        },
        { ttl: 60 },
      );

      // L1: the first read after a fill goes to Redis once more (the fill's own write comes back as an
      // invalidation), so count rather than predict the L1 lookups.
      const l1Hits = await value('walpurge_client_requests_total', { level: 'l1', result: 'hit' });
      const l1Misses = await value('walpurge_client_requests_total', { level: 'l1', result: 'miss' });
      expect(l1Hits).toBeGreaterThan(0);
      expect(l1Misses).toBeGreaterThan(0);
      const redisHits = await value('walpurge_client_requests_total', { level: 'redis', result: 'hit' });
      const redisStale = await value('walpurge_client_requests_total', { level: 'redis', result: 'stale' });
      const redisMisses = await value('walpurge_client_requests_total', { level: 'redis', result: 'miss' });
      expect(redisHits).toBeGreaterThanOrEqual(1); // plain's read of a (+ L1 re-reads); the waiter is a miss
      expect(redisStale).toBe(1);
      expect(redisMisses).toBe(5); // a (first read), s, w twice (the waiter too), r
      expect(await value('walpurge_client_stale_served_total')).toBe(1);
      expect(await value('walpurge_client_lease_waits_total')).toBe(1);
      expect(await value('walpurge_client_fill_rejections_total')).toBe(1);
      expect(await value('walpurge_client_loader_calls_total', { reason: 'miss' })).toBe(4); // a, s, w, r
      await waitFor(
        'background refresh of s',
        async () => (await value('walpurge_client_loader_calls_total', { reason: 'refresh' })) === 1,
      );

      const text = await registry.metrics();
      expect(text).toMatch(/^walpurge_client_requests_total\{level="redis",result="stale"\} 1$/m);
      // Ratios are derived in PromQL from the counters (docs/client.md), never exported as a gauge.
      expect(text).not.toMatch(/_ratio\b/);
      expect(text).toContain('walpurge_client_loader_duration_seconds_count');
    } finally {
      await withL1.close();
      await plain.close();
    }
  });
});
