import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createCacheClient, type CacheClient } from '@walpurge/client';
import { startLocalRedis, waitFor, type LocalRedis } from '@walpurge/testing';
import { listFailedWrites } from './failed-writes.js';
import { ITEMS_DDL, createFixture, type Fixture } from './test-support/fixture.js';

/**
 * A write PostgreSQL refuses for good is replaced in the cache by a marker (CACHE_PURGE_REFUSED).
 * A reader may hold a lease on the row's key at that moment, its loader still reading or holding
 * what it read: its fill must never land the refused value, nor anything but what PostgreSQL holds.
 */
const services = inject('services');
let queueRedis: LocalRedis;

beforeAll(async () => {
  queueRedis = await startLocalRedis({ persistent: true });
});
afterAll(async () => {
  await queueRedis?.stop();
});

interface Row {
  id: number;
  value: string;
  n: number | null;
}

/** A read whose loader reads PostgreSQL, then waits until `release()` before returning what it read. */
function heldRead(f: Fixture, reader: CacheClient, id: number) {
  let release!: () => void;
  const gate = new Promise<void>((done) => (release = done));
  let loaded: Row | null | undefined;
  const result = reader.get(
    `item:${id}`,
    async () => {
      const { rows } = await f.pool.query<Row>('SELECT id, value, n FROM items WHERE id = $1', [id]);
      loaded = rows[0] ?? null;
      await gate;
      return loaded;
    },
    { ttl: 600, leaseTtlMs: 60_000 },
  );
  return { result, release, loaded: () => loaded };
}

async function refusedFor(f: Fixture, count: number): Promise<void> {
  await waitFor(
    'the write failed for good',
    async () => (await listFailedWrites({ config: f.config })).length === count,
    {
      timeoutMs: 30_000,
    },
  );
}

describe('refused-value marker over a reader lease', () => {
  it('a lease taken after the refused value left the cache: the marker keeps the lease, and the fill lands what PostgreSQL holds', async () => {
    const f = await createFixture({
      databaseAdminUrl: services.databaseUrl,
      cacheRedisUrl: services.redisUrl,
      queueRedisUrl: queueRedis.url,
    });
    const reader = createCacheClient({ redis: f.cache, keyPrefix: f.cachePrefix, earlyRefreshBeta: 0 });
    try {
      await f.pool.query(ITEMS_DDL);
      await f.client.writeThrough('items', { id: 1, value: 'good', n: 1 });
      const refused = await f.client.writeBehind('items', { id: 1, value: 'refused', n: -1 }); // CHECK n >= 0
      expect(await f.cached('item:1')).toMatchObject({ value: 'refused' });
      // The entry goes (evicted, expired, purged): the next reader takes a lease on the bare key.
      await f.cache.unlink(`${f.cachePrefix}item:1`);
      const read = heldRead(f, reader, 1);
      await waitFor('the loader read PostgreSQL', async () => read.loaded() !== undefined);
      expect(await f.cache.hget(`${f.cachePrefix}item:1`, 'lease')).not.toBeNull();

      await f.startFlusher();
      await refusedFor(f, 1);
      // The marker is in place, at the refused version, with the lease still there.
      await waitFor(
        'the refused marker',
        async () => (await f.cache.hget(`${f.cachePrefix}item:1`, 'wv')) === refused.version,
      );
      // The key held only the lease when the marker came: the marker joined it (wv, rf) rather than
      // replacing it, so the lease is still the reader's.
      expect(await f.cache.hget(`${f.cachePrefix}item:1`, 'lease')).not.toBeNull();
      expect(await f.cache.hget(`${f.cachePrefix}item:1`, 'rf')).toBe('1');
      read.release();
      expect(await read.result).toEqual({ id: 1, value: 'good', n: 1 });
      // Every step above is gated, so the outcome is one: the fill (the database's row, read after the
      // refused value left the cache) landed over the marker, which stays as its guard.
      expect(await f.cached('item:1')).toEqual({ id: 1, value: 'good', n: 1 });
      expect(await f.cache.hget(`${f.cachePrefix}item:1`, 'wv')).toBe(refused.version);
      // The next reader is served that fill from the cache; its loader never runs.
      expect(
        await reader.get('item:1', async () => ({ id: 1, value: 'reloaded', n: 1 }), { ttl: 600 }),
      ).toEqual({ id: 1, value: 'good', n: 1 });
    } finally {
      await reader.close();
      await f.close();
    }
  });

  it('a lease taken before the refused write was accepted: its fill (read before the write) is rejected, and the marker stays', async () => {
    const f = await createFixture({
      databaseAdminUrl: services.databaseUrl,
      cacheRedisUrl: services.redisUrl,
      queueRedisUrl: queueRedis.url,
    });
    const reader = createCacheClient({ redis: f.cache, keyPrefix: f.cachePrefix, earlyRefreshBeta: 0 });
    try {
      await f.pool.query(ITEMS_DDL);
      await f.pool.query("INSERT INTO items (id, value, n) VALUES (2, 'old', 1)");
      const read = heldRead(f, reader, 2);
      await waitFor('the loader read PostgreSQL', async () => read.loaded() !== undefined);
      const refused = await f.client.writeBehind('items', { id: 2, value: 'refused', n: -1 });
      await f.startFlusher();
      await refusedFor(f, 1);
      await waitFor(
        'the refused marker',
        async () => (await f.cache.hget(`${f.cachePrefix}item:2`, 'wv')) === refused.version,
      );
      read.release();
      await read.result;
      // The fill was rejected: the key holds the marker alone, no value (the next read loads).
      expect(await f.cached('item:2')).toBeUndefined();
      expect(await f.cache.hget(`${f.cachePrefix}item:2`, 'wv')).toBe(refused.version);
      expect(await reader.get('item:2', async () => 'loaded again', { ttl: 600 })).toBe('loaded again');
    } finally {
      await reader.close();
      await f.close();
    }
  });
});
