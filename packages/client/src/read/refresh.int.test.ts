import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { uniqueName, waitFor } from '@walpurge/testing';
import { ErrorCode } from '@walpurge/core';
import { createCacheClient, type CacheClient } from './cache-client.js';
import type { CacheClientOptions } from './options.js';

type CounterName = 'refreshes' | 'refreshKeysDropped' | 'postPurgeReads' | 'l1Invalidations' | 'loaderCalls';

async function counter(client: CacheClient, name: CounterName, labels: Record<string, string> = {}) {
  const { values } = await client.metrics[name].get();
  return values
    .filter((v) => Object.entries(labels).every(([k, x]) => (v.labels as Record<string, unknown>)[k] === x))
    .reduce((sum, v) => sum + v.value, 0);
}

/** A loader over a variable standing in for the database, counting its calls. */
function source(initial: string) {
  const state = { value: initial, calls: 0 };
  return { state, loader: async () => ((state.calls += 1), state.value) };
}

const never = async (): Promise<string> => {
  throw new Error('the loader must not be called: the value is cached');
};

const HOT = { ttl: 600, refresh: 'on-invalidate' } as const;

describe("get(..., { refresh: 'on-invalidate' })", () => {
  const { redisUrl } = inject('services');
  let admin: Redis;
  const connections: Redis[] = [];

  /** Each client gets its own connection, as separate processes would. */
  async function connection(): Promise<Redis> {
    const redis = new Redis(redisUrl);
    connections.push(redis);
    await redis.ping();
    return redis;
  }

  /** A client with L1 (refresh needs its tracking) on its own connection, ready to track. */
  async function hotClient(prefix: string, options: Partial<CacheClientOptions> = {}): Promise<CacheClient> {
    const client = createCacheClient({
      redis: await connection(),
      keyPrefix: prefix,
      l1: true,
      earlyRefreshBeta: 0,
      ...options,
    });
    await client.ready();
    return client;
  }

  beforeAll(async () => {
    admin = new Redis(redisUrl);
    await admin.ping();
  });
  afterAll(() => {
    admin.disconnect();
    for (const redis of connections) redis.disconnect();
  });

  it('re-loads a purged hot key in the background: the next read hits without the loader', async () => {
    const prefix = `${uniqueName('refresh')}:`;
    const client = await hotClient(prefix);
    const db = source('v1');
    expect(await client.get('hot', db.loader, HOT)).toBe('v1');

    db.state.value = 'v2';
    await admin.unlink(`${prefix}hot`); // as the invalidator purges
    await waitFor(
      'background refresh',
      async () => (await counter(client, 'refreshes', { outcome: 'done' })) === 1,
      {
        timeoutMs: 20_000,
        intervalMs: 20,
      },
    );
    expect(db.state.calls).toBe(2);
    // Another reader (no L1, other connection) finds it in Redis.
    const plain = createCacheClient({ redis: await connection(), keyPrefix: prefix, earlyRefreshBeta: 0 });
    expect(await plain.get('hot', never, { ttl: 600 })).toBe('v2');
    expect(await client.get('hot', never, HOT)).toBe('v2');
    expect(await counter(client, 'loaderCalls', { reason: 'refresh_on_invalidate' })).toBe(1);
    expect(
      await counter(client, 'postPurgeReads', { refresh: 'on-invalidate', result: 'hit' }),
    ).toBeGreaterThanOrEqual(1);
    expect(await counter(client, 'postPurgeReads', { result: 'miss' })).toBe(0);
    await plain.close();
    await client.close();
  });

  it('a key read without refresh is not re-loaded, and its next read counts as a post-purge miss', async () => {
    const prefix = `${uniqueName('norefresh')}:`;
    const client = await hotClient(prefix);
    const db = source('v1');
    // Served from L1 once, so the process "held" the key when the purge arrives.
    await waitFor('served from L1', async () => {
      await client.get('cold', db.loader, { ttl: 600 });
      return (await client.metrics.requests.get()).values.some(
        (v) => v.labels['level'] === 'l1' && v.labels['result'] === 'hit',
      );
    });
    const invalidationsBefore = await counter(client, 'l1Invalidations');
    await admin.unlink(`${prefix}cold`);
    await waitFor(
      'invalidation received',
      async () => (await counter(client, 'l1Invalidations')) > invalidationsBefore,
    );
    expect(db.state.calls).toBe(1);
    expect(await client.get('cold', db.loader, { ttl: 600 })).toBe('v1');
    expect(db.state.calls).toBe(2);
    expect(await counter(client, 'postPurgeReads', { refresh: 'off', result: 'miss' })).toBe(1);
    expect(await counter(client, 'refreshes')).toBe(0);
    await client.close();
  });

  it('two processes: one refresh per purge, the other skips', async () => {
    const prefix = `${uniqueName('refresh2')}:`;
    const [a, b] = await Promise.all([hotClient(prefix), hotClient(prefix)]);
    const db = source('v1');
    await a.get('hot', db.loader, HOT);
    await b.get('hot', db.loader, HOT);
    expect(db.state.calls).toBe(1);

    for (let round = 1; round <= 5; round++) {
      db.state.value = `v${round + 1}`;
      const seenBefore = [await counter(a, 'refreshes'), await counter(b, 'refreshes')];
      await admin.unlink(`${prefix}hot`);
      await waitFor(
        `round ${round}: both processes looked at the purge and one refreshed`,
        async () =>
          (await counter(a, 'refreshes')) > (seenBefore[0] ?? 0) &&
          (await counter(b, 'refreshes')) > (seenBefore[1] ?? 0) &&
          (await counter(a, 'refreshes', { outcome: 'done' })) +
            (await counter(b, 'refreshes', { outcome: 'done' })) ===
            round,
        { timeoutMs: 20_000, intervalMs: 20 },
      );
      expect(db.state.calls).toBe(round + 1);
      // Read with the real loader: a hot key is refreshed with the loader of its latest read.
      expect(await a.get('hot', db.loader, HOT)).toBe(`v${round + 1}`);
      expect(await b.get('hot', db.loader, HOT)).toBe(`v${round + 1}`);
      expect(db.state.calls).toBe(round + 1);
    }
    expect(
      (await counter(a, 'refreshes', { outcome: 'failed' })) +
        (await counter(b, 'refreshes', { outcome: 'failed' })),
    ).toBe(0);
    // Lost lease races and the processes' own fills show up as skips, never as a second load.
    expect(db.state.calls).toBe(6);
    await a.close();
    await b.close();
  });

  it('stops refreshing a key nobody read within idleTimeoutMs', async () => {
    const prefix = `${uniqueName('refreshidle')}:`;
    let offsetMs = 0;
    const client = await hotClient(prefix, {
      refresh: { idleTimeoutMs: 60_000 },
      now: () => Date.now() + offsetMs,
    });
    const db = source('v1');
    await client.get('hot', db.loader, HOT);
    offsetMs = 120_000; // two idle timeouts later, nobody read it
    await admin.unlink(`${prefix}hot`);
    await waitFor(
      'idle key dropped',
      async () => (await counter(client, 'refreshKeysDropped', { reason: 'idle' })) === 1,
    );
    // Only its own read's lease and fill were looked at (skips); nothing was loaded.
    expect(await counter(client, 'refreshes', { outcome: 'done' })).toBe(0);
    expect(db.state.calls).toBe(1);
    expect(await admin.exists(`${prefix}hot`)).toBe(0);

    // Read again: remembered again, refreshed on the next purge.
    await client.get('hot', db.loader, HOT);
    await admin.unlink(`${prefix}hot`);
    await waitFor(
      'refreshed again',
      async () => (await counter(client, 'refreshes', { outcome: 'done' })) === 1,
    );
    expect(db.state.calls).toBe(3);
    await client.close();
  });

  it('a failing refresh is counted, not thrown, and a later purge refreshes again', async () => {
    const prefix = `${uniqueName('refreshfail')}:`;
    const client = await hotClient(prefix);
    let fail = false;
    const loader = async () => {
      if (fail) throw new Error('database down');
      return 'v';
    };
    await client.get('hot', loader, HOT);
    fail = true;
    await admin.unlink(`${prefix}hot`);
    await waitFor(
      'refresh failure counted',
      async () => (await counter(client, 'refreshes', { outcome: 'failed' })) === 1,
    );
    // The lease was given back: a reader loads at once.
    fail = false;
    expect(await client.get('hot', loader, HOT)).toBe('v');
    await admin.unlink(`${prefix}hot`);
    await waitFor(
      'refreshed after recovery',
      async () => (await counter(client, 'refreshes', { outcome: 'done' })) === 1,
    );
    await client.close();
  });

  it('close() awaits the refresh in flight and starts none after', async () => {
    const prefix = `${uniqueName('refreshclose')}:`;
    const client = await hotClient(prefix);
    let calls = 0;
    let open = () => {};
    const gate = new Promise<void>((resolve) => (open = resolve));
    const loader = async () => {
      calls += 1;
      if (calls > 1) await gate;
      return `v${calls}`;
    };
    await client.get('hot', loader, HOT);
    await admin.unlink(`${prefix}hot`);
    await waitFor('refresh running', async () => calls === 2);

    let closedAt: 'pending' | 'closed' = 'pending';
    const closing = client.close().then(() => (closedAt = 'closed'));
    // A purge while closing reaches the (still open) tracking connection but starts no refresh.
    const invalidationsBefore = await counter(client, 'l1Invalidations');
    await admin.unlink(`${prefix}hot`);
    await waitFor(
      'second purge seen',
      async () => (await counter(client, 'l1Invalidations')) > invalidationsBefore,
    );
    expect(closedAt).toBe('pending');
    open();
    await closing;
    expect(calls).toBe(2);
    // The refresh in flight lost its lease to the second purge: its fill was refused.
    expect(await counter(client, 'refreshes', { outcome: 'rejected' })).toBe(1);
    expect(await admin.exists(`${prefix}hot`)).toBe(0);
  });

  it('warm() with refresh: a warmed key is refreshed after its purge without having been read', async () => {
    const prefix = `${uniqueName('warmrefresh')}:`;
    const client = await hotClient(prefix);
    const db = source('v1');
    expect(await client.warm([{ key: 'hot', loader: db.loader, ...HOT }])).toMatchObject({ loaded: 1 });
    db.state.value = 'v2';
    await admin.unlink(`${prefix}hot`);
    await waitFor(
      'warmed key refreshed',
      async () => (await counter(client, 'refreshes', { outcome: 'done' })) === 1,
    );
    expect(await client.get('hot', never, { ttl: 600 })).toBe('v2');
    expect(db.state.calls).toBe(2);
    await client.close();
  });

  it('needs the in-process level (its tracking tells of purges)', async () => {
    const client = createCacheClient({
      redis: await connection(),
      keyPrefix: `${uniqueName('refreshnol1')}:`,
    });
    await expect(client.get('k', async () => 'v', HOT)).rejects.toMatchObject({
      code: ErrorCode.ConfigInvalid,
    });
    await client.close();
    expect(() => createCacheClient({ redis: admin, keyPrefix: 'x:', refresh: { concurrency: 2 } })).toThrow(
      /needs l1/,
    );
  });
});
