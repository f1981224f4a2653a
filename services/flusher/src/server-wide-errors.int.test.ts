import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startLocalRedis, waitFor, type LocalRedis } from '@walpurge/testing';
import { listFailedWrites } from './failed-writes.js';
import { ITEMS_DDL, createFixture, metricValue, type Fixture } from './test-support/fixture.js';

// Errors that say nothing about a row (a database that refuses connections or writes for a while, a
// migration holding a table lock) must never fail rows: they are retried until the database is back,
// and every accepted write then reaches PostgreSQL.

const services = inject('services');
let queueRedis: LocalRedis;
let admin: pg.Client;

beforeAll(async () => {
  queueRedis = await startLocalRedis({ persistent: true });
  admin = new pg.Client({ connectionString: services.databaseUrl });
  await admin.connect();
});
afterAll(async () => {
  await admin?.end();
  await queueRedis?.stop();
});

async function fixture(): Promise<Fixture & { database: string }> {
  const f = await createFixture({
    databaseAdminUrl: services.databaseUrl,
    cacheRedisUrl: services.redisUrl,
    queueRedisUrl: queueRedis.url,
  });
  await f.pool.query(ITEMS_DDL);
  return Object.assign(f, { database: `"${f.db!.name.replace(/"/g, '""')}"` });
}

/** Ends the flusher's session, so its next one sees the database's new settings. */
async function dropFlusherSession(f: Fixture): Promise<void> {
  await admin.query(
    `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
      WHERE datname = $1 AND application_name = 'walpurge-flusher'`,
    [f.db!.name],
  );
}

async function values(f: Fixture): Promise<Record<number, string>> {
  const { rows } = await f.pool.query<{ id: number; value: string }>('SELECT id, value FROM items');
  return Object.fromEntries(rows.map((row) => [row.id, row.value]));
}

/**
 * The held-back gauge the alert watches: above 0 while the batch waits on the server, back to 0
 * once it went through.
 */
async function heldBack(flusher: Awaited<ReturnType<Fixture['startFlusher']>>, held: boolean): Promise<void> {
  await waitFor(
    held ? 'the batch reported held back' : 'the held-back gauge back to 0',
    async () => {
      const seconds = await metricValue(flusher.registry, 'walpurge_flusher_batch_held_seconds');
      return held ? seconds > 0 : seconds === 0;
    },
    { timeoutMs: 30_000 },
  );
}

/** Until the flusher retried well past its cap (or, wrongly, failed a row). */
async function retriedPastTheCap(
  f: Fixture,
  flusher: Awaited<ReturnType<Fixture['startFlusher']>>,
  attempts: number,
): Promise<void> {
  await waitFor(
    'retries past the cap',
    async () =>
      (await metricValue(flusher.registry, 'walpurge_flusher_failures_total', { kind: 'transient' })) >=
        attempts || (await listFailedWrites({ config: f.config })).length > 0,
    { timeoutMs: 30_000 },
  );
}

describe('write-behind: errors that are not the row never fail it', () => {
  it('a database set read-only for a while (25006, as after a failover) fails no row; the write lands once it is writable', async () => {
    const f = await fixture();
    try {
      const flusher = await f.startFlusher({ maxBatchRetries: 2, retryMaxMs: 200 });
      await f.client.writeBehind('items', { id: 1, value: 'before', n: null });
      await f.drained(20_000);
      await admin.query(`ALTER DATABASE ${f.database} SET default_transaction_read_only = on`);
      await dropFlusherSession(f);
      await f.client.writeBehind('items', { id: 2, value: 'while read-only', n: null });
      await retriedPastTheCap(f, flusher, 6);
      await heldBack(flusher, true);
      expect(await listFailedWrites({ config: f.config })).toEqual([]);
      expect(await f.cached('item:2')).toMatchObject({ value: 'while read-only' });
      await admin.query(`ALTER DATABASE ${f.database} RESET default_transaction_read_only`);
      await f.drained(30_000);
      await heldBack(flusher, false);
      expect(await values(f)).toEqual({ 1: 'before', 2: 'while read-only' });
      expect(await listFailedWrites({ config: f.config })).toEqual([]);
    } finally {
      await admin.query(`ALTER DATABASE ${f.database} RESET default_transaction_read_only`);
      await f.close();
    }
  });

  it('a database refusing new sessions for a while (the session cannot be opened) fails no row', async () => {
    const f = await fixture();
    try {
      const flusher = await f.startFlusher({ maxBatchRetries: 2, retryMaxMs: 200 });
      await f.client.writeBehind('items', { id: 1, value: 'before', n: null });
      await f.drained(20_000);
      await admin.query(`ALTER DATABASE ${f.database} ALLOW_CONNECTIONS false`);
      await dropFlusherSession(f);
      await f.client.writeBehind('items', { id: 2, value: 'while closed', n: null });
      await retriedPastTheCap(f, flusher, 6);
      await heldBack(flusher, true);
      expect(await listFailedWrites({ config: f.config })).toEqual([]);
      await admin.query(`ALTER DATABASE ${f.database} ALLOW_CONNECTIONS true`);
      await f.drained(30_000);
      await heldBack(flusher, false);
      expect(await values(f)).toEqual({ 1: 'before', 2: 'while closed' });
    } finally {
      await admin.query(`ALTER DATABASE ${f.database} ALLOW_CONNECTIONS true`);
      await f.close();
    }
  });

  it('a table lock held past lock_timeout (55P03, a migration) is retried beyond maxBatchRetries, fails no row, and shows in the held-back gauge', async () => {
    const f = await fixture();
    const migration = await f.pool.connect();
    try {
      await admin.query(`ALTER DATABASE ${f.database} SET lock_timeout = '100ms'`);
      const flusher = await f.startFlusher({
        maxBatchRetries: 2,
        retryMaxMs: 200,
        batchDelayMs: 200,
        // The periodic refresh runs once, at start: the held-back gauge must move without it (it
        // waits on the queue Redis, and would freeze the gauge during an outage of that Redis).
        metricsIntervalMs: 3_600_000,
      });
      await f.client.writeBehind('items', { id: 1, value: 'before', n: null });
      await f.drained(20_000);
      await migration.query('BEGIN');
      await migration.query('LOCK TABLE items IN ACCESS EXCLUSIVE MODE');
      await f.client.writeBehind('items', { id: 2, value: 'b', n: null });
      await f.client.writeBehind('items', { id: 3, value: 'c', n: null });
      // Enough attempts for the batch and both rows on their own to pass the cap.
      await retriedPastTheCap(f, flusher, 10);
      // Still locked: the batch is held back, and the gauge says so.
      await heldBack(flusher, true);
      expect(await listFailedWrites({ config: f.config })).toEqual([]);
      await migration.query('COMMIT');
      await f.drained(30_000);
      await heldBack(flusher, false);
      expect(await values(f)).toEqual({ 1: 'before', 2: 'b', 3: 'c' });
      expect(await listFailedWrites({ config: f.config })).toEqual([]);
    } finally {
      await migration.query('ROLLBACK').catch(() => undefined);
      migration.release();
      await admin.query(`ALTER DATABASE ${f.database} RESET lock_timeout`);
      await f.close();
    }
  });

  it('a row whose own lock stays held past lock_timeout while the rest of its batch goes through fails alone: it never holds up later writes', async () => {
    const f = await fixture();
    const app = await f.pool.connect();
    try {
      await admin.query(`ALTER DATABASE ${f.database} SET lock_timeout = '100ms'`);
      await f.startFlusher({ maxBatchRetries: 2, retryMaxMs: 200, batchDelayMs: 200 });
      await f.client.writeBehind('items', { id: 1, value: 'a', n: null });
      await f.client.writeBehind('items', { id: 2, value: 'b', n: null });
      await f.drained(20_000);
      // An application transaction holds row 2 and does not let go.
      await app.query('BEGIN');
      await app.query('SELECT * FROM items WHERE id = 2 FOR UPDATE');
      await f.client.writeBehind('items', { id: 2, value: 'b2', n: null });
      await f.client.writeBehind('items', { id: 3, value: 'c', n: null });
      await waitFor(
        'row 2 failed alone',
        async () => (await listFailedWrites({ config: f.config })).length === 1,
        { timeoutMs: 30_000 },
      );
      // A later write is not stuck behind row 2.
      await f.client.writeBehind('items', { id: 4, value: 'd', n: null });
      await waitFor('row 4 written', async () => (await values(f))[4] === 'd', { timeoutMs: 20_000 });
      expect(await values(f)).toMatchObject({ 1: 'a', 2: 'b', 3: 'c', 4: 'd' });
      const failed = await listFailedWrites({ config: f.config });
      expect(failed.map((write) => write.key)).toEqual([JSON.stringify({ id: 2 })]);
    } finally {
      await app.query('ROLLBACK').catch(() => undefined);
      app.release();
      await admin.query(`ALTER DATABASE ${f.database} RESET lock_timeout`);
      await f.close();
    }
  });
});
