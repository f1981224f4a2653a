import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import pg from 'pg';
import { deleteStatement, describeWriteTable, upsertStatement } from '@walpurge/write-behind';
import { ErrorCode, WalpurgeError } from '@walpurge/core';
import { startLocalRedis, waitFor, type LocalRedis } from '@walpurge/testing';
import { listFailedWrites, redriveFailedWrites } from './failed-writes.js';
import { ITEMS_DDL, createFixture, metricValue, type Fixture } from './test-support/fixture.js';

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

describe('write-behind flusher', () => {
  it('10,000 concurrent writes over 100 rows end with every row holding its last write, in PostgreSQL and in the cache', async () => {
    const f = await fixture();
    try {
      const flusher = await f.startFlusher({ batchSize: 100 });
      const latest = new Map<number, { version: bigint; value: string }>();
      // 100 concurrent writers, 100 writes each, to random rows, while the flusher is flushing: writes
      // land on rows whose job is queued, active or just finished. Versions, not arrival order,
      // must decide what wins.
      let seq = 0;
      await Promise.all(
        Array.from({ length: 100 }, async () => {
          for (let i = 0; i < 100; i += 1) {
            const row = { id: Math.floor(Math.random() * 100), value: `w${seq}`, n: seq };
            seq += 1;
            const result = await f.client.writeBehind('items', row);
            const seen = latest.get(row.id);
            if (!seen || BigInt(result.version) > seen.version)
              latest.set(row.id, { version: BigInt(result.version), value: row.value });
          }
        }),
      );
      expect(seq).toBe(10_000);
      await f.drained();

      const { rows } = await f.pool.query<{ id: number; value: string; _walpurge_version: string }>(
        'SELECT id, value, _walpurge_version FROM items ORDER BY id',
      );
      expect(rows).toHaveLength(100);
      for (const row of rows) {
        const want = latest.get(row.id)!;
        expect({ id: row.id, value: row.value, version: row._walpurge_version }).toEqual({
          id: row.id,
          value: want.value,
          version: String(want.version),
        });
        expect(await f.cached(`item:${row.id}`)).toMatchObject({ id: row.id, value: want.value });
      }
      // Coalescing: far fewer database row writes than accepted writes.
      const stats = await f.queue.hgetall(f.layout.stats);
      expect(Number(stats['accepted'])).toBe(10_000);
      expect(Number(stats['written'])).toBeLessThan(10_000);
      expect(Number(stats['written'])).toBeGreaterThanOrEqual(100);
      await waitFor(
        'metrics refresh',
        async () =>
          (await metricValue(flusher.registry, 'walpurge_flusher_queue_writes_accepted_total')) === 10_000 &&
          (await metricValue(flusher.registry, 'walpurge_flusher_queue_rows_written_total')) ===
            Number(stats['written']),
      );
      expect(
        await metricValue(flusher.registry, 'walpurge_flusher_rows_flushed_total'),
      ).toBeGreaterThanOrEqual(100);
    } finally {
      await f.close();
    }
  });

  it('the SQL guard: an older write never overwrites a newer one, and never resurrects a deleted row', async () => {
    const f = await fixture();
    const client = await f.pool.connect();
    try {
      await f.startFlusher(); // creates the tombstone table
      const shape = await describeWriteTable(client, 'items', '_walpurge_version');
      const tombstones = 'walpurge_write_behind_tombstones';
      const upsert = (version: number, value: string) =>
        client.query(upsertStatement(shape, ['id', 'value'], tombstones), [
          JSON.stringify([{ id: 1, value, _walpurge_version: version }]),
          'public.items',
        ]);
      await upsert(20, 'new');
      expect((await upsert(10, 'old')).rowCount).toBe(0);
      expect((await client.query('SELECT value FROM items WHERE id = 1')).rows).toEqual([{ value: 'new' }]);
      await client.query(deleteStatement(shape, tombstones), [
        JSON.stringify([{ id: 1, _walpurge_version: 30 }]),
        'public.items',
      ]);
      expect((await upsert(25, 'late')).rowCount).toBe(0);
      expect((await client.query('SELECT count(*)::int AS n FROM items WHERE id = 1')).rows).toEqual([
        { n: 0 },
      ]);
      expect((await upsert(31, 'reborn')).rowCount).toBe(1);
    } finally {
      client.release();
      await f.close();
    }
  });

  it('deleteBehind removes the row and the cached value; writeThrough and deleteThrough are immediate', async () => {
    const f = await fixture();
    try {
      await f.startFlusher();
      await f.client.writeBehind('items', { id: 7, value: 'a', n: 1 });
      await f.client.deleteBehind('items', { id: 7 });
      expect(await f.cached('item:7')).toBeUndefined();
      await f.drained();
      expect((await f.pool.query('SELECT * FROM items WHERE id = 7')).rowCount).toBe(0);

      const through = await f.client.writeThrough('items', { id: 8, value: 'through', n: 2 });
      expect(through.applied).toBe(true);
      expect((await f.pool.query('SELECT value FROM items WHERE id = 8')).rows).toEqual([
        { value: 'through' },
      ]);
      expect(await f.cached('item:8')).toMatchObject({ value: 'through' });
      // A write-behind queued earlier but flushed later cannot overwrite the newer write-through.
      await f.client.writeBehind('items', { id: 8, value: 'behind', n: 3 });
      const newer = await f.client.writeThrough('items', { id: 8, value: 'through-2', n: 4 });
      await f.drained();
      expect(
        (await f.pool.query('SELECT value, _walpurge_version::text AS v FROM items WHERE id = 8')).rows,
      ).toEqual([{ value: 'through-2', v: newer.version }]);
      expect(await f.cached('item:8')).toMatchObject({ value: 'through-2' });
      await f.client.deleteThrough('items', { id: 8 });
      expect((await f.pool.query('SELECT 1 FROM items WHERE id = 8')).rowCount).toBe(0);
      expect(await f.cached('item:8')).toBeUndefined();
      // A failed write-through changes nothing anywhere.
      await expect(f.client.writeThrough('items', { id: 9, value: 'bad', n: -1 })).rejects.toMatchObject({
        code: '23514',
      });
      expect(await f.cached('item:9')).toBeUndefined();
    } finally {
      await f.close();
    }
  });

  it('permanent errors fail only the bad rows, are counted, listed with the reason, and can be redriven', async () => {
    const f = await fixture();
    try {
      const flusher = await f.startFlusher({ batchSize: 50, batchDelayMs: 100 });
      const writes = [
        f.client.writeBehind('items', { id: 1, value: 'ok', n: 1 }),
        f.client.writeBehind('items', { id: 2, value: 'violates check', n: -5 }),
        f.client.writeBehind('items', { id: 3, value: 'ok too', n: 3 }),
        f.client.writeBehind('items', { id: 4, value: 'violates it too', n: -4 }),
      ];
      await Promise.all(writes);
      // A row that does not fit the table never gets this far: it is refused at accept.
      await expect(f.client.writeBehind('items', { id: 5, value: 'x', n: 5, nope: true })).rejects.toThrow(
        /column nope does not exist/,
      );
      await waitFor(
        'two failed writes',
        async () => (await listFailedWrites({ config: f.config })).length === 2,
        { timeoutMs: 30_000 },
      );
      expect((await f.pool.query('SELECT id FROM items ORDER BY id')).rows).toEqual([{ id: 1 }, { id: 3 }]);

      const failed = await listFailedWrites({ config: f.config });
      const byKey = new Map(failed.map((write) => [write.key, write]));
      expect(byKey.get('{"id":2}')?.reason).toMatch(/check constraint.*23514/);
      expect(byKey.get('{"id":4}')?.reason).toMatch(/check constraint.*23514/);
      expect(
        failed.every((write) => write.table === 'public.items' && write.pendingVersion && !write.superseded),
      ).toBe(true);
      expect(
        await metricValue(flusher.registry, 'walpurge_flusher_failures_total', { kind: 'permanent' }),
      ).toBe(2);
      // Never dropped: both rows are still pending.
      expect(await f.queue.zcard(f.layout.index)).toBe(2);

      // The operator fixes the cause, then redrives.
      await f.pool.query('ALTER TABLE items DROP CONSTRAINT items_n_check');
      const { redriven } = await redriveFailedWrites({
        config: f.config,
        jobIds: [byKey.get('{"id":2}')!.jobId],
      });
      expect(redriven).toHaveLength(1);
      await waitFor(
        'row 2 flushed',
        async () => (await f.pool.query('SELECT n FROM items WHERE id = 2')).rows[0]?.n === -5,
      );
      // A newer write supersedes the other failed write and flushes by itself.
      await f.client.writeBehind('items', { id: 4, value: 'fixed', n: 4 });
      await f.drained();
      expect((await f.pool.query('SELECT value FROM items WHERE id = 4')).rows).toEqual([{ value: 'fixed' }]);
      const left = await listFailedWrites({ config: f.config });
      expect(left.map((write) => [write.key, write.superseded])).toEqual([['{"id":4}', true]]);
    } finally {
      await f.close();
    }
  });

  it('marks its commits with the replication origin, visible to logical decoding', async () => {
    const f = await fixture();
    const slot = `${f.prefix}_td`;
    try {
      await f.pool.query(`CREATE PUBLICATION ${f.prefix}_pub FOR TABLE items`);
      await f.pool.query("SELECT pg_create_logical_replication_slot($1, 'test_decoding')", [slot]);
      await f.pool.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [`${slot}_po`]);
      await f.startFlusher();
      await f.client.writeBehind('items', { id: 100, value: 'from flusher', n: 1 });
      await f.drained();
      await f.pool.query("INSERT INTO items (id, value) VALUES (200, 'from app')");

      const changes = async (onlyLocal: string) =>
        (
          await f.pool.query<{ data: string }>(
            "SELECT data FROM pg_logical_slot_peek_changes($1, NULL, NULL, 'only-local', $2)",
            [slot, onlyLocal],
          )
        ).rows
          .map((row) => row.data)
          .filter((data) => data.startsWith('table public.items'));
      const all = await changes('0');
      expect(all.some((data) => data.includes("'from flusher'"))).toBe(true);
      expect(all.some((data) => data.includes("'from app'"))).toBe(true);
      // only-local skips changes that carry a replication origin: the flusher's, not the app's.
      const local = await changes('1');
      expect(local.some((data) => data.includes("'from flusher'"))).toBe(false);
      expect(local.some((data) => data.includes("'from app'"))).toBe(true);

      // pgoutput (what the listener reads) sends an Origin message naming it before the changes.
      const { rows } = await f.pool.query<{ data: Buffer }>(
        "SELECT data FROM pg_logical_slot_peek_binary_changes($1, NULL, NULL, 'proto_version', '1', 'publication_names', $2)",
        [`${slot}_po`, `${f.prefix}_pub`],
      );
      const origins = rows
        .filter((row) => row.data[0] === 0x4f /* 'O' */)
        .map((row) => row.data.subarray(9, row.data.length - 1).toString());
      expect(origins).toEqual(['walpurge_write_behind']);
    } finally {
      await f.pool.query(
        'SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name LIKE $1',
        [`${slot}%`],
      );
      await f.close();
    }
  });

  it('refuses to start on a queue Redis that may lose writes, unless allowed', async () => {
    const unsafe = await startLocalRedis({ persistent: false });
    const f = await createFixture({
      databaseAdminUrl: services.databaseUrl,
      cacheRedisUrl: services.redisUrl,
      queueRedisUrl: unsafe.url,
    });
    try {
      const error = await f.startFlusher().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(WalpurgeError);
      expect(error).toMatchObject({
        code: ErrorCode.RedisUnsafeForQueue,
        message: expect.stringMatching(/appendonly is off/),
      });
      const flusher = await f.startFlusher({ allowUnsafeRedis: true });
      expect(flusher.isReady()).toBe(true);
    } finally {
      await f.close();
      await unsafe.stop();
    }
  });

  it('checks configured tables at start-up: a missing version column is a clear error', async () => {
    const f = await fixture();
    try {
      await f.pool.query('CREATE TABLE plain (id int PRIMARY KEY, value text)');
      const error = await f.startFlusher({ tables: ['plain'] }).catch((e: unknown) => e);
      expect(error).toMatchObject({
        code: ErrorCode.SchemaMismatch,
        message: 'write-behind table public.plain has no version column _walpurge_version',
        hint: expect.stringContaining('ADD COLUMN "_walpurge_version" bigint'),
      });
      const ok = await f.startFlusher({ tables: ['items'] });
      expect(ok.isReady()).toBe(true);
    } finally {
      await f.close();
    }
  });
});

void pg;
