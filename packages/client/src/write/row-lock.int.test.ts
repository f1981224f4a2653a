import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createIsolatedDatabase, uniqueName, waitFor, type IsolatedDatabase } from '@walpurge/testing';
import {
  deleteStatement,
  describeWriteTable,
  lockRows,
  tombstoneTableDdl,
  upsertStatement,
  type TableShape,
  writeBehindLayout,
} from '@walpurge/write-behind';
import { createWriteClient } from './write-client.js';

/**
 * Writes to one row are serialised (advisory lock per row key, taken before the statement), so a
 * late older upsert (a second flusher re-running a stalled job) cannot slip past a delete that
 * commits while it runs: write skew under READ COMMITTED.
 */
const services = inject('services');
const TOMBSTONES = 'walpurge_write_behind_tombstones';
let db: IsolatedDatabase;
let pool: pg.Pool;
let shape: TableShape;

beforeAll(async () => {
  db = await createIsolatedDatabase(services.databaseUrl, 'wb_lock');
  pool = new pg.Pool({ connectionString: db.url, max: 6 });
  await pool.query(`CREATE TABLE items (id int PRIMARY KEY, value text NOT NULL,
    _walpurge_version bigint NOT NULL DEFAULT 0)`);
  for (const statement of tombstoneTableDdl(TOMBSTONES)) await pool.query(statement);
  const client = await pool.connect();
  try {
    shape = await describeWriteTable(client, 'items', '_walpurge_version');
  } finally {
    client.release();
  }
});
afterAll(async () => {
  await pool?.end();
  await db?.drop();
});

/** What the flusher and write-through run in their transaction: lock, then the guarded statement. */
async function guarded(
  client: pg.PoolClient,
  kind: 'upsert' | 'delete',
  row: Record<string, unknown>,
): Promise<void> {
  const params = [JSON.stringify([row]), 'public.items'] as const;
  await lockRows(client, shape, params);
  await client.query(
    kind === 'upsert'
      ? upsertStatement(shape, Object.keys(row), TOMBSTONES)
      : deleteStatement(shape, TOMBSTONES),
    [...params],
  );
}

async function waitingOnLock(pid: number): Promise<boolean> {
  const { rows } = await pool.query<{ waiting: boolean }>(
    `SELECT wait_event_type = 'Lock' AS waiting FROM pg_stat_activity WHERE pid = $1`,
    [pid],
  );
  return rows[0]?.waiting === true;
}

describe('per-row serialisation of write-behind and write-through statements', () => {
  it('a late older upsert does not resurrect a row deleted while it ran', async () => {
    await pool.query(`INSERT INTO items VALUES (1, 'v100', 100)`);
    const deleter = await pool.connect();
    const upserter = await pool.connect();
    try {
      await deleter.query('BEGIN');
      await guarded(deleter, 'delete', { id: 1, _walpurge_version: 300 });
      // The stalled job's value: newer than the row, older than the delete.
      await upserter.query('BEGIN');
      const upserterPid = (await upserter.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!
        .pid;
      const upsert = guarded(upserter, 'upsert', { id: 1, value: 'v200', _walpurge_version: 200 });
      await waitFor('the upsert to wait for the delete', () => waitingOnLock(upserterPid), {
        timeoutMs: 10_000,
      });
      await deleter.query('COMMIT');
      await upsert;
      await upserter.query('COMMIT');
      expect((await pool.query('SELECT * FROM items WHERE id = 1')).rows).toEqual([]);
    } finally {
      deleter.release();
      upserter.release();
    }
  });

  it('deleteThrough waits for a flush holding the row lock', async () => {
    const redis = new Redis(services.redisUrl);
    const prefix = uniqueName('wbl');
    const client = createWriteClient({
      cacheRedis: redis,
      queueRedis: redis,
      // The shared test Redis has no AOF; durability is not what this file tests.
      allowUnsafeQueueRedis: true,
      database: pool,
      queuePrefix: writeBehindLayout(`${prefix}:wb:`).prefix,
      cacheKeyPrefix: `${prefix}:cache:`,
    });
    const flush = await pool.connect();
    try {
      await client.writeThrough('items', { id: 2, value: 'first' });
      await flush.query('BEGIN');
      await lockRows(flush, shape, [JSON.stringify([{ id: 2 }]), 'public.items']);
      let done = false;
      const deleted = client.deleteThrough('items', { id: 2 }).finally(() => (done = true));
      await waitFor(
        'deleteThrough to wait for the row lock',
        async () =>
          (await pool.query(`SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`))
            .rowCount === 1,
        { timeoutMs: 10_000 },
      );
      expect(done).toBe(false);
      await flush.query('COMMIT');
      expect((await deleted).applied).toBe(true);
    } finally {
      flush.release();
      await client.close();
      redis.disconnect();
    }
  });
});
