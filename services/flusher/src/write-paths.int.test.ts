import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createCacheClient } from '@walpurge/client';
import { CacheWriter, createWriteClientFromConfig } from '@walpurge/client/write';
import { WalpurgeConfig } from '@walpurge/config';
import { ErrorCode } from '@walpurge/core';
import { startLocalRedis, type LocalRedis } from '@walpurge/testing';
import { ITEMS_DDL, createFixture, type Fixture } from './test-support/fixture.js';

/**
 * The client's write paths beside the flusher: write-through leaves no half state, and deletes leave
 * tombstones (in PostgreSQL and in the cache) so that a late older write never brings a row back.
 */
const services = inject('services');
let queueRedis: LocalRedis;

beforeAll(async () => {
  queueRedis = await startLocalRedis({ persistent: true });
});
afterAll(async () => {
  await queueRedis?.stop();
});

async function fixture(): Promise<Fixture> {
  const f = await createFixture({
    databaseAdminUrl: services.databaseUrl,
    cacheRedisUrl: services.redisUrl,
    queueRedisUrl: queueRedis.url,
  });
  await f.pool.query(ITEMS_DDL);
  return f;
}

async function dbRow(f: Fixture, id: number): Promise<{ value: string; v: string } | undefined> {
  const { rows } = await f.pool.query<{ value: string; v: string }>(
    'SELECT value, _walpurge_version::text AS v FROM items WHERE id = $1',
    [id],
  );
  return rows[0];
}

describe('write-through', () => {
  it('works before any flusher ever ran (creates the tombstone table itself)', async () => {
    const f = await fixture();
    try {
      const result = await f.client.writeThrough('items', { id: 1, value: 'first', n: 1 });
      expect(result).toMatchObject({ applied: true, cacheKeysWritten: 1 });
      expect(await dbRow(f, 1)).toEqual({ value: 'first', v: result.version });
      expect(await f.cached('item:1')).toEqual({ id: 1, value: 'first', n: 1 });
      const gone = await f.client.deleteThrough('items', { id: 1 });
      expect(gone.applied).toBe(true);
      expect(await dbRow(f, 1)).toBeUndefined();
      expect(await f.cached('item:1')).toBeUndefined();
    } finally {
      await f.close();
    }
  });

  it('a refused write changes nothing: the old row and the old cached value stay, consistent', async () => {
    const f = await fixture();
    try {
      const before = await f.client.writeThrough('items', { id: 2, value: 'good', n: 1 });
      const error = await f.client
        .writeThrough('items', { id: 2, value: 'bad', n: -1 })
        .catch((e: unknown) => e);
      expect(error).toMatchObject({ code: '23514' }); // the check constraint, as PostgreSQL said it
      expect(await dbRow(f, 2)).toEqual({ value: 'good', v: before.version });
      expect(await f.cached('item:2')).toEqual({ id: 2, value: 'good', n: 1 });
      // A column that does not exist is refused before anything is written.
      await expect(f.client.writeThrough('items', { id: 2, value: 'x', nope: 1 })).rejects.toMatchObject({
        code: ErrorCode.WriteInvalid,
        message: expect.stringMatching(/column nope does not exist/),
      });
      expect(await f.cached('item:2')).toEqual({ id: 2, value: 'good', n: 1 });
    } finally {
      await f.close();
    }
  });

  it('when the cache cannot be updated after the commit, the old cached value is dropped, not left behind', async () => {
    const f = await fixture();
    try {
      // Something else left a plain string at the key: the version-guarded hash write fails on it.
      await f.cache.set(`${f.cachePrefix}item:3`, 'stale value from before');
      const error = await f.client
        .writeThrough('items', { id: 3, value: 'committed', n: 1 })
        .catch((e: unknown) => e);
      expect(error).toMatchObject({
        code: ErrorCode.WriteBehindCacheFailed,
        retriable: true,
        message: expect.stringMatching(/committed to PostgreSQL .* but the cache could not be updated/),
      });
      expect(await dbRow(f, 3)).toMatchObject({ value: 'committed' });
      // No half state visible: the old value is gone, so the next read loads the committed row.
      expect(await f.cache.exists(`${f.cachePrefix}item:3`)).toBe(0);
    } finally {
      await f.close();
    }
  });
});

describe('keys from the rules file', () => {
  it('createWriteClientFromConfig writes the row to the rule keys picked in rowKeys, and refuses unknown ones', async () => {
    const f = await fixture();
    const config = WalpurgeConfig.parse({
      ...f.config,
      rules: [{ table: 'items', redis: { keys: ['item:{id}', 'items:all'], tags: ['items'] } }],
    });
    expect(() => createWriteClientFromConfig(config, { rowKeys: { items: ['itme:{id}'] } })).toThrow(
      /"itme:\{id\}" is not among the redis.keys of any rule for public.items/,
    );
    const client = createWriteClientFromConfig(config, {
      rowKeys: { items: ['item:{id}'] },
      withDatabase: true,
    });
    try {
      const result = await client.writeThrough('items', { id: 11, value: 'via rules', n: 1 });
      expect(result.cacheKeysWritten).toBe(1);
      expect(await f.cached('item:11')).toEqual({ id: 11, value: 'via rules', n: 1 });
      expect(await f.cache.exists(`${f.cachePrefix}items:all`)).toBe(0); // a list: the invalidator's to purge
    } finally {
      await client.close();
      await f.close();
    }
  });
});

describe('deletes and tombstones', () => {
  it('deleteThrough of a row whose write-behind is still pending: the later flush cannot resurrect it, in PostgreSQL or in the cache', async () => {
    const f = await fixture();
    try {
      const behind = await f.client.writeBehind('items', { id: 4, value: 'pending', n: 1 });
      expect(await f.cached('item:4')).toMatchObject({ value: 'pending' });
      // PostgreSQL has no row yet (no flusher is running): nothing to delete there, but the delete wins.
      const deleted = await f.client.deleteThrough('items', { id: 4 });
      expect(deleted.applied).toBe(false);
      expect(BigInt(deleted.version)).toBeGreaterThan(BigInt(behind.version));
      expect(await f.cached('item:4')).toBeUndefined(); // the pending value is no longer served

      await f.startFlusher(); // now the older write-behind value is flushed, late
      await f.drained();
      expect(await dbRow(f, 4)).toBeUndefined();
      expect(await f.cached('item:4')).toBeUndefined();
      expect(await f.cache.hget(`${f.cachePrefix}item:4`, 'wv')).toBe(deleted.version);
      const tombstone = await f.pool.query<{ version: string }>(
        "SELECT version::text FROM walpurge_write_behind_tombstones WHERE table_name = 'public.items' AND row_key = '{\"id\":4}'",
      );
      expect(tombstone.rows).toEqual([{ version: deleted.version }]);

      // A NEWER write brings the row back on purpose.
      const again = await f.client.writeBehind('items', { id: 4, value: 'reborn', n: 2 });
      await f.drained();
      expect(await dbRow(f, 4)).toEqual({ value: 'reborn', v: again.version });
    } finally {
      await f.close();
    }
  });

  it('deleteBehind after writeBehind coalesces to a delete; the cache tombstone refuses a late older value', async () => {
    const f = await fixture();
    try {
      await f.client.writeThrough('items', { id: 5, value: 'in db', n: 1 });
      await f.client.writeBehind('items', { id: 5, value: 'newer', n: 2 });
      const deleted = await f.client.deleteBehind('items', { id: 5 });
      expect(await f.cached('item:5')).toBeUndefined();
      await f.startFlusher();
      await f.drained();
      expect(await dbRow(f, 5)).toBeUndefined();

      // The cache tombstone refuses an older value, whoever writes it late; a newer one goes in.
      const cache = new CacheWriter({ redis: f.cache, keyPrefix: f.cachePrefix, ttlMs: 60_000 });
      const older = (BigInt(deleted.version) - 1n).toString();
      expect(await cache.set(['item:5'], { id: 5, value: 'late' }, older)).toBe(0);
      expect(await f.cached('item:5')).toBeUndefined();
      const newer = (BigInt(deleted.version) + 1n).toString();
      expect(await cache.set(['item:5'], { id: 5, value: 'newer' }, newer)).toBe(1);
      expect(await f.cached('item:5')).toEqual({ id: 5, value: 'newer' });
    } finally {
      await f.close();
    }
  });

  it('a reader filling over a cache tombstone gets the database row, and that fill is marked so the echo purge removes it', async () => {
    const f = await fixture();
    const reader = createCacheClient({ redis: f.cache, keyPrefix: f.cachePrefix, earlyRefreshBeta: 0 });
    try {
      await f.client.writeThrough('items', { id: 6, value: 'in db', n: 1 });
      await f.client.deleteBehind('items', { id: 6 }); // not flushed: PostgreSQL still has the row
      const loaded = await reader.get('item:6', async () => (await dbRow(f, 6))?.value ?? null, { ttl: 60 });
      expect(loaded).toBe('in db');
      expect(await f.cache.hget(`${f.cachePrefix}item:6`, 'rf')).toBe('1');
    } finally {
      await reader.close();
      await f.close();
    }
  });
});
