import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { describeWriteTable, lockRows } from '@walpurge/write-behind';
import { startLocalRedis, waitFor, type LocalRedis } from '@walpurge/testing';
import { ITEMS_DDL, createFixture } from './test-support/fixture.js';

/**
 * The flusher takes the same per-row lock as write-through and delete-through before its statement
 * (see lockRowsStatement): while another transaction holds a row, its flush waits, and then sees
 * whatever that transaction committed (a delete's tombstone above all).
 */
const services = inject('services');
let queueRedis: LocalRedis;

beforeAll(async () => {
  queueRedis = await startLocalRedis({ persistent: true });
});
afterAll(async () => {
  await queueRedis?.stop();
});

describe('flusher per-row lock', () => {
  it("waits for a transaction holding the row's lock, and a delete committed meanwhile wins", async () => {
    const f = await createFixture({
      databaseAdminUrl: services.databaseUrl,
      cacheRedisUrl: services.redisUrl,
      queueRedisUrl: queueRedis.url,
    });
    const holder = await f.pool.connect();
    try {
      await f.pool.query(ITEMS_DDL);
      await f.startFlusher();
      // A write-through that already holds row 1 (it took its version after this write-behind).
      const shape = await describeWriteTable(holder, 'items', '_walpurge_version');
      await f.client.writeThrough('items', { id: 2, value: 'creates the tombstone table', n: 0 });
      await holder.query('BEGIN');
      await lockRows(holder, shape, [JSON.stringify([{ id: 1 }]), 'public.items']);
      await f.client.writeBehind('items', { id: 1, value: 'older', n: 1 });
      await waitFor(
        'the flush to wait for the row lock',
        async () =>
          (await f.pool.query(`SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`))
            .rowCount === 1,
        { timeoutMs: 15_000 },
      );
      // The holder deletes the row with a newer version and commits; the waiting flush must see it.
      const newer = String(BigInt((await f.queue.get(f.layout.clock)) ?? '0') + 1000n);
      await holder.query(
        `INSERT INTO walpurge_write_behind_tombstones (table_name, row_key, version)
         VALUES ('public.items', '{"id": 1}', $1)`,
        [newer],
      );
      await holder.query('COMMIT');
      await f.drained();
      expect((await f.pool.query('SELECT * FROM items WHERE id = 1')).rows).toEqual([]);
    } finally {
      holder.release();
      await f.close();
    }
  });
});
