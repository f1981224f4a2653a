import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { uniqueName, waitFor } from '@walpurge/testing';
import { createCacheClient, type CacheClient } from './cache-client.js';
import { startRedisProxy } from './test-fixtures/redis-proxy.js';

async function counterValue(
  client: CacheClient,
  metric: 'requests' | 'l1Flushes',
  labels: Record<string, string>,
): Promise<number> {
  const { values } = await client.metrics[metric].get();
  return (
    values.find((v) =>
      Object.entries(labels).every(([k, x]) => (v.labels as Record<string, unknown>)[k] === x),
    )?.value ?? 0
  );
}

describe('two-level cache (in-process LRU kept honest by Redis tracking)', () => {
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

  /** A loader over a variable standing in for the database, counting its calls. */
  function source(initial: string) {
    const state = { value: initial, calls: 0 };
    return { state, loader: async () => ((state.calls += 1), state.value) };
  }

  async function untilServedFromL1(
    client: CacheClient,
    key: string,
    loader: () => Promise<string>,
    expected: string,
  ): Promise<void> {
    await waitFor(`${key} served from L1`, async () => {
      const before = await counterValue(client, 'requests', { level: 'l1', result: 'hit' });
      const value = await client.get(key, loader, { ttl: 600 });
      const after = await counterValue(client, 'requests', { level: 'l1', result: 'hit' });
      return value === expected && after > before;
    });
  }

  it('sees a purge made by another connection without waiting for the staleness bound', async () => {
    const prefix = `${uniqueName('l1')}:`;
    // A staleness bound far beyond the wait below: only an invalidation message can explain a fresh read.
    const client = createCacheClient({
      redis,
      keyPrefix: prefix,
      l1: { maxStalenessMs: 600_000 },
      earlyRefreshBeta: 0,
    });
    await client.ready();
    const db = source('v1');
    await untilServedFromL1(client, 'user:1', db.loader, 'v1');
    const loadsBefore = db.state.calls;

    db.state.value = 'v2';
    // A served-from-memory read still returns v1: the database change alone is not visible...
    expect(await client.get('user:1', db.loader, { ttl: 600 })).toBe('v1');
    // ...until the pipeline purges the key, exactly as the invalidator does.
    await admin.unlink(`${prefix}user:1`);
    await waitFor(
      'purge visible through L1',
      async () => (await client.get('user:1', db.loader, { ttl: 600 })) === 'v2',
      {
        timeoutMs: 10_000,
        intervalMs: 20,
      },
    );
    expect(db.state.calls).toBe(loadsBefore + 1);
    await client.close();
  });

  it('flushes and bypasses L1 when the tracking connection is lost, and recovers', async () => {
    const prefix = `${uniqueName('l1lost')}:`;
    const client = createCacheClient({
      redis,
      keyPrefix: prefix,
      l1: { maxStalenessMs: 600_000 },
      earlyRefreshBeta: 0,
    });
    await client.ready();
    const db = source('v1');
    await untilServedFromL1(client, 'k', db.loader, 'v1');

    const id = client.trackingClientId();
    expect(id).toBeGreaterThan(0);
    await admin.client('KILL', 'ID', String(id));
    await waitFor(
      'L1 flushed after losing tracking',
      async () => (await counterValue(client, 'l1Flushes', { reason: 'tracking_lost' })) >= 1,
    );

    // Tracking comes back by itself (ioredis reconnects) and invalidations flow again.
    await waitFor('tracking re-established', async () => {
      const now = client.trackingClientId();
      return now !== undefined && now !== id;
    });
    await untilServedFromL1(client, 'k', db.loader, 'v1');
    db.state.value = 'v2';
    await admin.unlink(`${prefix}k`);
    await waitFor(
      'purge visible after reconnect',
      async () => (await client.get('k', db.loader, { ttl: 600 })) === 'v2',
      {
        intervalMs: 20,
      },
    );
    await client.close();
  });

  it('bounds staleness when an invalidation message is lost: L1 asks Redis again after maxStalenessMs', async () => {
    const prefix = `${uniqueName('l1bound')}:`;
    const proxy = await startRedisProxy(redisUrl);
    const own = new Redis(proxy.url);
    await own.ping(); // connection 0: commands; the client's tracking connection will be 1
    let offsetMs = 0; // the client's clock: real time, moved forward by the test
    const client = createCacheClient({
      redis: own,
      keyPrefix: prefix,
      l1: { maxStalenessMs: 5_000 },
      earlyRefreshBeta: 0,
      now: () => Date.now() + offsetMs,
    });
    try {
      await client.ready();
      expect(proxy.connections).toBe(2);
      const db = source('v1');
      await untilServedFromL1(client, 'k', db.loader, 'v1');

      proxy.mute(1); // tracking stays connected, but its invalidation messages never arrive
      db.state.value = 'v2';
      await admin.unlink(`${prefix}k`);
      await new Promise((resolve) => setTimeout(resolve, 100)); // the push had time to be (not) delivered
      expect(await client.get('k', db.loader, { ttl: 600 })).toBe('v1'); // stale, from memory
      expect(client.trackingClientId()).toBeDefined(); // L1 still believes it is being told

      offsetMs += 5_001; // the entry is now older than the bound
      expect(await client.get('k', db.loader, { ttl: 600 })).toBe('v2');
      expect(
        await counterValue(client, 'requests', { level: 'redis', result: 'miss' }),
      ).toBeGreaterThanOrEqual(2);
    } finally {
      await client.close();
      own.disconnect();
      await proxy.close();
    }
  });
});
