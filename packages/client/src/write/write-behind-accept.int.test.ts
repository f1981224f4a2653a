import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ErrorCode } from '@walpurge/core';
import { createIsolatedDatabase, uniqueName, type IsolatedDatabase } from '@walpurge/testing';
import { writeBehindLayout } from '@walpurge/write-behind';
import { createWriteClient, type WriteClient } from './write-client.js';

/**
 * What writeBehind accepts. An accepted write is cached at once and flushed later, so whatever the
 * flusher (PostgreSQL) would refuse, or would write differently from what is cached, must be refused
 * here: rows that do not fit the table, partial rows, and two spellings of one primary key.
 */
const services = inject('services');
let db: IsolatedDatabase;
let pool: pg.Pool;
let redis: Redis;

beforeAll(async () => {
  db = await createIsolatedDatabase(services.databaseUrl, 'wb_accept');
  pool = new pg.Pool({ connectionString: db.url, max: 4 });
  await pool.query(`CREATE TABLE items (
    id int PRIMARY KEY, value varchar(8) NOT NULL, n int, _walpurge_version bigint NOT NULL DEFAULT 0)`);
  await pool.query(`CREATE TABLE accounts (
    id uuid PRIMARY KEY, name text NOT NULL, _walpurge_version bigint NOT NULL DEFAULT 0)`);
  redis = new Redis(services.redisUrl);
});
afterAll(async () => {
  redis?.disconnect();
  await pool?.end();
  await db?.drop();
});

function setup(options: { shapeRefreshMs?: number } = {}) {
  const prefix = uniqueName('wba');
  const layout = writeBehindLayout(`${prefix}:wb:`);
  const client: WriteClient = createWriteClient({
    cacheRedis: redis,
    queueRedis: redis,
    // The shared test Redis has no AOF; durability is not what this file tests.
    allowUnsafeQueueRedis: true,
    database: pool,
    queuePrefix: layout.prefix,
    cacheKeyPrefix: `${prefix}:cache:`,
    keys: (table, row) => [`${table}:${String(row['id'])}`],
    ...options,
  });
  return {
    prefix,
    client,
    layout,
    pendingRows: () => redis.zcard(layout.index),
    cachedKeys: () => redis.keys(`${prefix}:cache:*`),
  };
}

describe('writeBehind refuses at accept what PostgreSQL would refuse', () => {
  it.each([
    ['an unknown column', { id: 1, value: 'a', n: 1, nope: true }, /column nope does not exist/],
    ['a string in an int column', { id: 2, value: 'a', n: 'many' }, /n .*integer/],
    ['null in a NOT NULL column', { id: 3, value: null, n: 1 }, /value .*null/],
    ['a value too long for varchar(8)', { id: 4, value: 'much too long', n: 1 }, /value .*8 characters/],
    ['a fraction in an int column', { id: 5, value: 'a', n: 1.5 }, /n .*integer/],
    ['an int out of range', { id: 6, value: 'a', n: 2 ** 31 }, /n .*integer/],
  ])('%s: nothing queued, nothing cached', async (_what, row, reason) => {
    const t = setup();
    try {
      await expect(t.client.writeBehind('items', row)).rejects.toMatchObject({
        code: ErrorCode.WriteInvalid,
        message: expect.stringMatching(reason),
      });
      expect(await t.pendingRows()).toBe(0);
      expect(await t.cachedKeys()).toEqual([]);
    } finally {
      await t.client.close();
    }
  });

  it('refuses rows of a table whose primary key is GENERATED ALWAYS AS IDENTITY (every flush would fail)', async () => {
    const t = setup();
    await pool.query(`CREATE TABLE events (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body text,
      _walpurge_version bigint NOT NULL DEFAULT 0)`);
    try {
      await expect(t.client.writeBehind('events', { id: 1, body: 'x' })).rejects.toMatchObject({
        code: ErrorCode.WriteInvalid,
        message: expect.stringMatching(/GENERATED ALWAYS AS IDENTITY/),
      });
      expect(await t.pendingRows()).toBe(0);
    } finally {
      await t.client.close();
    }
  });

  it('refuses a partial row: a later flush would drop the columns it does not name', async () => {
    const t = setup();
    try {
      await t.client.writeBehind('items', { id: 10, value: 'A', n: 1 });
      await expect(t.client.writeBehind('items', { id: 10, n: 2 })).rejects.toMatchObject({
        code: ErrorCode.WriteInvalid,
        message: expect.stringMatching(/partial row .*value/),
      });
      // Nullable columns must be named too (as null): the cache holds exactly what PostgreSQL will.
      await expect(t.client.writeBehind('items', { id: 11, value: 'B' })).rejects.toMatchObject({
        code: ErrorCode.WriteInvalid,
        message: expect.stringMatching(/partial row .*\bn\b/),
      });
      const pending = await redis.hget(
        t.layout.pending((await t.client.writeBehind('items', { id: 10, value: 'C', n: null })).rowId),
        'r',
      );
      expect(JSON.parse(pending ?? '{}')).toEqual({ id: 10, value: 'C', n: null });
    } finally {
      await t.client.close();
    }
  });

  it('one row id per database row: key values are normalised to the column type before hashing', async () => {
    const t = setup();
    try {
      const asNumber = await t.client.writeBehind('items', { id: 20, value: 'a', n: 1 });
      const asString = await t.client.writeBehind('items', { id: '20', value: 'b', n: 2 });
      expect(asString.rowId).toBe(asNumber.rowId);
      expect(await t.pendingRows()).toBe(1);
      // The pending row holds the normalised key, as PostgreSQL will return it.
      expect(JSON.parse((await redis.hget(t.layout.pending(asNumber.rowId), 'r')) ?? '{}')).toEqual({
        id: 20,
        value: 'b',
        n: 2,
      });

      const uuid = '0e3f3a8c-6b1d-4c52-9d0e-5b8f0c2a7e11';
      const lower = await t.client.writeBehind('accounts', { id: uuid, name: 'x' });
      const upper = await t.client.writeBehind('accounts', { id: uuid.toUpperCase(), name: 'y' });
      expect(upper.rowId).toBe(lower.rowId);
      await expect(t.client.writeBehind('accounts', { id: 'not-a-uuid', name: 'z' })).rejects.toMatchObject({
        code: ErrorCode.WriteInvalid,
      });
      const deleted = await t.client.deleteBehind('items', { id: '20' });
      expect(deleted.rowId).toBe(asNumber.rowId);
    } finally {
      await t.client.close();
    }
  });

  it('sees a column added to the table (the table shape is re-read, not cached forever)', async () => {
    const t = setup({ shapeRefreshMs: 60_000 });
    await pool.query(`CREATE TABLE notes (id int PRIMARY KEY, body text NOT NULL,
      _walpurge_version bigint NOT NULL DEFAULT 0)`);
    try {
      await t.client.writeBehind('notes', { id: 1, body: 'a' });
      await pool.query(`ALTER TABLE notes ADD COLUMN title text`);
      // Without the new column the row is now partial; with it, it is accepted (one re-read of the
      // shape before refusing, as the flusher does).
      await t.client.writeBehind('notes', { id: 1, body: 'b', title: 't' });
      await expect(t.client.writeBehind('notes', { id: 1, body: 'c' })).rejects.toMatchObject({
        code: ErrorCode.WriteInvalid,
      });
    } finally {
      await t.client.close();
    }
  });

  it('caches with the TTL and stale-while-revalidate the read side uses for the key', async () => {
    const t = setup();
    try {
      const key = `${t.prefix}:cache:public.items:30`;
      const before = Date.now();
      await t.client.writeBehind(
        'items',
        { id: 30, value: 'ttl', n: 1 },
        { ttl: 30, staleWhileRevalidate: 10 },
      );
      const softExpiry = Number(await redis.hget(key, 'e'));
      // Jitter only shortens (at most 10 %), as on the read side.
      expect(softExpiry - before).toBeLessThanOrEqual(30_000 + 1_000);
      expect(softExpiry - before).toBeGreaterThanOrEqual(27_000 - 1_000);
      const physical = await redis.pttl(key);
      expect(physical).toBeGreaterThan(softExpiry - Date.now() + 9_000);
      expect(physical).toBeLessThanOrEqual(40_000);
      // A delete marker keeps the same lifetime rule (a late older write must meet it).
      await t.client.deleteBehind('items', { id: 30 }, { ttl: 30, staleWhileRevalidate: 10 });
      expect(await redis.pttl(key)).toBeLessThanOrEqual(40_000);
    } finally {
      await t.client.close();
    }
  });
});

describe('writeThrough of a partial row', () => {
  it('never caches the partial object: PostgreSQL merges it, the cache keys get a marker (a miss)', async () => {
    const t = setup();
    try {
      const key = `${t.prefix}:cache:public.items:40`;
      await t.client.writeThrough('items', { id: 40, value: 'full', n: 1 });
      // (Only nullable or defaulted columns can be left out: PostgreSQL checks NOT NULL on the row
      // it would insert before it finds the conflict.)
      const partial = await t.client.writeThrough('items', { id: 40, value: 'changed' });
      expect(partial.applied).toBe(true);
      expect((await pool.query('SELECT value, n FROM items WHERE id = 40')).rows).toEqual([
        { value: 'changed', n: 1 },
      ]);
      // Only the version is left: readers see a miss and load the merged row.
      expect(await redis.hgetall(key)).toEqual({ wv: partial.version });
    } finally {
      await t.client.close();
    }
  });
});
