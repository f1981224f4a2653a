import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { tombstoneTableDdl } from '@walpurge/write-behind';
import { createLogger } from '@walpurge/core';
import { createIsolatedDatabase, type IsolatedDatabase } from '@walpurge/testing';
import { BatchWriter } from './batch-writer.js';
import { FlushConnection } from './flush-connection.js';
import { pendingUpsert } from './test-support/pending-write.js';

/**
 * The batch writer on real PostgreSQL.
 *
 * Two flusher replicas writing batches that touch the same rows of two tables in opposite orders
 * ([items#1, orders#5] and [orders#5, items#1]) must not deadlock: every row lock of a batch is
 * taken in one statement, in one global order, before any row is written.
 */
const services = inject('services');
const TOMBSTONES = 'walpurge_write_behind_tombstones';
let db: IsolatedDatabase;
let pool: pg.Pool;

beforeAll(async () => {
  db = await createIsolatedDatabase(services.databaseUrl, 'lockorder');
  pool = new pg.Pool({ connectionString: db.url, max: 2 });
  // Each write waits a little inside its statement, so the two batches overlap: one holds its first
  // table's rows while it gets to the second.
  await pool.query(`
    CREATE TABLE items (id int PRIMARY KEY, value text, _walpurge_version bigint NOT NULL DEFAULT 0);
    CREATE TABLE orders (id int PRIMARY KEY, value text, _walpurge_version bigint NOT NULL DEFAULT 0);
    CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN PERFORM pg_sleep(0.5); RETURN NEW; END $$;
    CREATE TRIGGER slow BEFORE INSERT OR UPDATE ON items FOR EACH ROW EXECUTE FUNCTION slow();
    CREATE TRIGGER slow BEFORE INSERT OR UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION slow();`);
  for (const statement of tombstoneTableDdl(TOMBSTONES)) await pool.query(statement);
});
afterAll(async () => {
  await pool?.end();
  await db?.drop();
});

describe('flusher row locks', () => {
  it('two replicas writing the same rows of two tables in opposite orders do not deadlock', async () => {
    const logger = createLogger({ level: 'silent', pretty: false });
    const connections = [1, 2].map(() => new FlushConnection({ url: db.url, origin: undefined, logger }));
    try {
      const [a, b] = connections.map((c) => new BatchWriter(c, '_walpurge_version', TOMBSTONES));
      const results = await Promise.allSettled([
        a!.write([pendingUpsert('items', 1, 10), pendingUpsert('orders', 5, 10)]),
        b!.write([pendingUpsert('orders', 5, 20), pendingUpsert('items', 1, 20)]),
      ]);
      // A deadlock shows as 40P01 thrown by one of the two (the batcher would retry it).
      expect(results.map((r) => (r.status === 'rejected' ? String(r.reason) : 'ok'))).toEqual(['ok', 'ok']);
      const { rows } = await pool.query(
        `SELECT 'items' AS t, value FROM items UNION ALL SELECT 'orders', value FROM orders ORDER BY t`,
      );
      expect(rows).toEqual([
        { t: 'items', value: 'v20' },
        { t: 'orders', value: 'v20' },
      ]);
    } finally {
      for (const c of connections) await c.close();
    }
  });
});

describe('flusher batch validation', () => {
  it('a table dropped since its shape was read fails only its own rows, not the other tables of the batch', async () => {
    const logger = createLogger({ level: 'silent', pretty: false });
    const connection = new FlushConnection({ url: db.url, origin: undefined, logger });
    try {
      await pool.query(
        `CREATE TABLE doomed (id int PRIMARY KEY, value text, _walpurge_version bigint NOT NULL DEFAULT 0)`,
      );
      const writer = new BatchWriter(connection, '_walpurge_version', TOMBSTONES);
      const first = await writer.write([pendingUpsert('doomed', 1, 30)]);
      expect(first.outcomes.get('doomed#1')).toEqual({ ok: true });
      await pool.query('DROP TABLE doomed');
      // A column the known shape lacks makes the writer read the shape again: the table is gone.
      const late = { ...pendingUpsert('doomed', 2, 40), row: { id: 2, value: 'x', added: 1 } };
      const result = await writer.write([late, pendingUpsert('items', 7, 40)]);
      expect(result.outcomes.get('items#7')).toEqual({ ok: true });
      expect(result.outcomes.get('doomed#2')).toMatchObject({ ok: false });
      expect((await pool.query('SELECT value FROM items WHERE id = 7')).rows).toEqual([{ value: 'v40' }]);
    } finally {
      await connection.close();
    }
  });
});
