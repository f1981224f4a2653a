import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { uniqueName, waitFor } from '@walpurge/testing';
import { CACHE_PUT_SCRIPT } from '@walpurge/write-behind';
import { createCacheClient } from './cache-client.js';
import { PayloadCodec, jsonSerializer } from './serializer.js';
import type { WarmProgress } from './warm.js';

/** A loader that blocks until `open()` is called, so a test can act while it is "reading the database". */
function gated<T>(value: T) {
  let open = () => {};
  const gate = new Promise<void>((resolve) => (open = resolve));
  const state = { calls: 0 };
  return {
    state,
    open: () => open(),
    loader: async () => {
      state.calls += 1;
      await gate;
      return value;
    },
  };
}

const never = async (): Promise<string> => {
  throw new Error('the loader must not be called: the value is cached');
};

describe('warm(): pre-loading through the lease path', () => {
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

  it('loads missing keys, skips cached ones, collects failures and reports progress', async () => {
    const prefix = `${uniqueName('warm')}:`;
    const client = createCacheClient({ redis, keyPrefix: prefix, earlyRefreshBeta: 0 });
    await client.get('cached', async () => 'old', { ttl: 600 });
    let loads = 0;
    const entries = [
      ...Array.from({ length: 20 }, (_, i) => ({
        key: `k${i}`,
        loader: async () => ((loads += 1), `v${i}`),
        ttl: 600,
      })),
      { key: 'cached', loader: async () => ((loads += 1), 'new'), ttl: 600 },
      { key: 'no-ttl', loader: async () => ((loads += 1), 'forever'), ttl: 0 },
      {
        key: 'broken',
        loader: async (): Promise<string> => {
          throw new Error('database down');
        },
        ttl: 600,
      },
    ];
    const seen: WarmProgress[] = [];
    const report = await client.warm(entries, { concurrency: 3, onProgress: (p) => seen.push(p) });

    expect(report).toMatchObject({ total: 23, loaded: 20, skipped: 1, failed: 2, completed: 23 });
    expect(report.skippedBy.present).toBe(1);
    expect(report.failures.map((f) => f.key).sort()).toEqual(['broken', 'no-ttl']);
    expect(report.failures.map((f) => String(f.error)).join()).toContain('database down');
    expect(report.failures.map((f) => String(f.error)).join()).toContain('ttl must be a positive number');
    expect(loads).toBe(20);
    // One callback per entry (plus the final one), counting up to the total.
    expect(seen.length).toBe(24);
    expect(seen.map((p) => p.completed)).toEqual([...Array.from({ length: 23 }, (_, i) => i + 1), 23]);
    expect(seen.at(-1)).toMatchObject({ loaded: 20, skipped: 1, failed: 2 });

    // Warmed keys are read without the loader; the cached one kept its value.
    expect(await client.get('k7', never, { ttl: 600 })).toBe('v7');
    expect(await client.get('cached', never, { ttl: 600 })).toBe('old');
    const { values } = await client.metrics.warmEntries.get();
    const byOutcome = Object.fromEntries(values.map((v) => [v.labels['outcome'], v.value]));
    expect(byOutcome).toMatchObject({ loaded: 20, skipped_present: 1, failed: 2 });
    // The failed key left no lease behind: a reader loads it at once.
    expect(await client.get('broken', async () => 'recovered', { ttl: 600 })).toBe('recovered');
    await client.close();
  });

  it('never overwrites a value written or re-filled while its loader ran', async () => {
    const prefix = `${uniqueName('warmrace')}:`;
    const client = createCacheClient({ redis, keyPrefix: prefix, earlyRefreshBeta: 0 });
    const other = createCacheClient({ redis: admin, keyPrefix: prefix, earlyRefreshBeta: 0 });
    const written = gated('stale from warm');
    const refilled = gated('stale from warm');
    const warming = client.warm([
      { key: 'written', loader: written.loader, ttl: 600 },
      { key: 'refilled', loader: refilled.loader, ttl: 600 },
    ]);
    await waitFor(
      'both warm loaders running',
      async () => written.state.calls === 1 && refilled.state.calls === 1,
    );

    // The write side puts a newer version (as write-through does)...
    const payload = await new PayloadCodec<unknown>(jsonSerializer).encode('written by the app');
    await admin.eval(CACHE_PUT_SCRIPT, 1, `${prefix}written`, 7, 'set', payload, 600_000, 600_000);
    // ...and the other key is purged (as the invalidator does) and re-read by another client.
    await admin.unlink(`${prefix}refilled`);
    expect(await other.get('refilled', async () => 'fresh from the database', { ttl: 600 })).toBe(
      'fresh from the database',
    );

    written.open();
    refilled.open();
    const report = await warming;
    expect(report).toMatchObject({ loaded: 0, skipped: 2, failed: 0 });
    expect(report.skippedBy.rejected).toBe(2);
    expect(await client.get('written', never, { ttl: 600 })).toBe('written by the app');
    expect(await client.get('refilled', never, { ttl: 600 })).toBe('fresh from the database');
    await client.close();
    await other.close();
  });

  it('waits for a connection the client opened itself before loading (start-up)', async () => {
    const prefix = `${uniqueName('warmstart')}:`;
    const client = createCacheClient({ redis: redisUrl, keyPrefix: prefix, earlyRefreshBeta: 0 });
    const report = await client.warm([{ key: 'k', loader: async () => 'v', ttl: 600 }]);
    expect(report).toMatchObject({ loaded: 1, failed: 0 });
    expect(await client.get('k', never, { ttl: 600 })).toBe('v');
    await client.close();
  });

  it('skips a key another caller is loading instead of loading it twice', async () => {
    const prefix = `${uniqueName('warmbusy')}:`;
    const client = createCacheClient({ redis, keyPrefix: prefix, earlyRefreshBeta: 0 });
    const reader = gated('from the reader');
    const reading = client.get('k', reader.loader, { ttl: 600 });
    await waitFor('reader holds the lease', async () => reader.state.calls === 1);
    let warmLoads = 0;
    const report = await client.warm([{ key: 'k', loader: async () => ((warmLoads += 1), 'x'), ttl: 600 }]);
    expect(report.skippedBy.leasedElsewhere).toBe(1);
    expect(warmLoads).toBe(0);
    reader.open();
    expect(await reading).toBe('from the reader');
    await client.close();
  });
});
