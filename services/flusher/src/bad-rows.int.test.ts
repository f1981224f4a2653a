import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startLocalRedis, waitFor, type LocalRedis } from '@walpurge/testing';
import { describeWriteTable, upsertStatement } from '@walpurge/write-behind';
import { listFailedWrites } from './failed-writes.js';
import { ITEMS_DDL, createFixture, metricValue, type Fixture } from './test-support/fixture.js';

// One bad row must never stop write-behind: whatever PostgreSQL answers for it (a trigger's own
// error, an error of a class that is normally worth retrying, a foreign key not there yet), the
// other rows of its batch land, and the bad row fails alone with its reason.

const services = inject('services');
let queueRedis: LocalRedis;

beforeAll(async () => {
  queueRedis = await startLocalRedis({ persistent: true });
});
afterAll(async () => {
  await queueRedis?.stop();
});

/** `boom` raises P0001; `flaky` raises 40001 (a class normally retried) on every attempt. */
const REFUSING_TRIGGER = `
CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.value = 'slow-boom' THEN PERFORM pg_sleep(1.5); RAISE EXCEPTION 'slow refused'; END IF;
  IF NEW.value = 'boom' THEN RAISE EXCEPTION 'boom refused'; END IF;
  IF NEW.value = 'flaky' THEN RAISE EXCEPTION 'always conflicts' USING ERRCODE = '40001'; END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER refuse BEFORE INSERT OR UPDATE ON items FOR EACH ROW EXECUTE FUNCTION refuse();`;

async function fixture(): Promise<Fixture> {
  const f = await createFixture({
    databaseAdminUrl: services.databaseUrl,
    cacheRedisUrl: services.redisUrl,
    queueRedisUrl: queueRedis.url,
  });
  await f.pool.query(ITEMS_DDL);
  await f.pool.query(REFUSING_TRIGGER);
  return f;
}

async function values(f: Fixture): Promise<Record<number, string>> {
  const { rows } = await f.pool.query<{ id: number; value: string }>('SELECT id, value FROM items');
  return Object.fromEntries(rows.map((row) => [row.id, row.value]));
}

describe('write-behind: one bad row fails alone', () => {
  it("a trigger's RAISE EXCEPTION (P0001) fails only its row, with its reason; the cache no longer serves it", async () => {
    const f = await fixture();
    try {
      const flusher = await f.startFlusher({ batchDelayMs: 300 });
      await f.client.writeBehind('items', { id: 1, value: 'a', n: null });
      await f.client.writeBehind('items', { id: 2, value: 'boom', n: null });
      await f.client.writeBehind('items', { id: 3, value: 'c', n: null });
      expect(await f.cached('item:2')).toMatchObject({ value: 'boom' });
      await waitFor('good rows written', async () => Object.keys(await values(f)).length === 2, {
        timeoutMs: 20_000,
      });
      expect(await values(f)).toEqual({ 1: 'a', 3: 'c' });
      await waitFor(
        'the bad row failed',
        async () => (await listFailedWrites({ config: f.config })).length === 1,
      );
      const [failed] = await listFailedWrites({ config: f.config });
      expect(failed?.key).toBe('{"id":2}');
      expect(failed?.reason).toContain('P0001');
      expect(
        await metricValue(flusher.registry, 'walpurge_flusher_failures_total', { kind: 'permanent' }),
      ).toBe(1);
      // PostgreSQL refused the value: the cache must not keep serving it.
      await waitFor(
        'refused value purged from the cache',
        async () => (await f.cached('item:2')) === undefined,
      );
      expect(await f.cached('item:1')).toMatchObject({ value: 'a' });
    } finally {
      await f.close();
    }
  });

  it('a constraint violation purges the refused value from every cache key the row was written under', async () => {
    const f = await fixture();
    try {
      const flusher = await f.startFlusher();
      await f.client.writeBehind('items', { id: 9, value: 'ok', n: 1 });
      await f.drained();
      // A write PostgreSQL will refuse, cached on accept under two keys.
      await f.client.writeBehind(
        'items',
        { id: 9, value: 'bad', n: -1 },
        { keys: ['item:9', 'by-value:bad'] },
      );
      expect(await f.cached('item:9')).toMatchObject({ value: 'bad' });
      expect(await f.cached('by-value:bad')).toMatchObject({ value: 'bad' });
      await waitFor(
        'the refused write failed',
        async () => (await listFailedWrites({ config: f.config })).length === 1,
      );
      await waitFor(
        'refused value purged from both keys',
        async () =>
          (await f.cached('item:9')) === undefined && (await f.cached('by-value:bad')) === undefined,
      );
      expect(
        await metricValue(flusher.registry, 'walpurge_flusher_failures_total', { kind: 'cache_purge' }),
      ).toBe(0);
      // PostgreSQL still has the last value it accepted.
      expect(await values(f)).toEqual({ 9: 'ok' });
    } finally {
      await f.close();
    }
  });

  it('a row that keeps failing with a normally transient error is split off after the retry cap and fails alone', async () => {
    const f = await fixture();
    try {
      await f.startFlusher({ batchDelayMs: 300, maxBatchRetries: 3 });
      await f.client.writeBehind('items', { id: 1, value: 'a', n: null });
      await f.client.writeBehind('items', { id: 2, value: 'flaky', n: null });
      await f.client.writeBehind('items', { id: 3, value: 'c', n: null });
      await f.client.writeBehind('items', { id: 4, value: 'd', n: null });
      await waitFor('good rows written', async () => Object.keys(await values(f)).length === 3, {
        timeoutMs: 20_000,
      });
      expect(await values(f)).toEqual({ 1: 'a', 3: 'c', 4: 'd' });
      await waitFor(
        'the bad row failed',
        async () => (await listFailedWrites({ config: f.config })).length === 1,
        {
          timeoutMs: 20_000,
        },
      );
      const [failed] = await listFailedWrites({ config: f.config });
      expect(failed?.key).toBe('{"id":2}');
      expect(failed?.reason).toContain('40001');
    } finally {
      await f.close();
    }
  });

  // numeric keys are not normalised at accept (1, '1' and '1.0' are three row ids, one database
  // row), so these rows reach the batch's DISTINCT ON as a client would send them.
  const PRICES_DDL = `CREATE TABLE prices (id numeric PRIMARY KEY, value text NOT NULL,
                                           _walpurge_version bigint NOT NULL DEFAULT 0)`;
  async function prices(f: Fixture): Promise<Array<{ id: string; value: string }>> {
    const { rows } = await f.pool.query<{ id: string; value: string }>(
      'SELECT id::text AS id, value FROM prices ORDER BY id',
    );
    return rows;
  }

  it('two row ids naming one database row in one batch (21000) are written once, newest value winning', async () => {
    const f = await fixture();
    try {
      await f.pool.query(PRICES_DDL);
      const older = await f.client.writeBehind('prices', { id: 1, value: 'older' });
      // The same database row once PostgreSQL converts it to numeric (1 = 1.0).
      const newer = await f.client.writeBehind('prices', { id: '1.0', value: 'newer' });
      expect(newer.rowId).not.toBe(older.rowId);
      await f.client.writeBehind('prices', { id: 2, value: 'other' });
      // Accepted before the flusher starts, so all three are in its first batch.
      const flusher = await f.startFlusher({ batchDelayMs: 300 });
      await f.drained(20_000);
      expect(await listFailedWrites({ config: f.config })).toEqual([]);
      expect((await prices(f)).map((row) => row.value)).toEqual(['newer', 'other']);
      expect(await metricValue(flusher.registry, 'walpurge_flusher_batches_total')).toBe(1);
      // Deduplicated in the statement: two rows changed. Without it, PostgreSQL refuses the batch
      // (21000) and the split writes the two ids apart: three.
      expect(await metricValue(flusher.registry, 'walpurge_flusher_rows_applied_total')).toBe(2);
      expect(await metricValue(flusher.registry, 'walpurge_flusher_batch_splits_total')).toBe(0);
    } finally {
      await f.close();
    }
  });

  it('…and so are two deletes of one database row in one batch', async () => {
    const f = await fixture();
    try {
      await f.pool.query(PRICES_DDL);
      await f.pool.query(`INSERT INTO prices (id, value) VALUES (3, 'there')`);
      const older = await f.client.deleteBehind('prices', { id: 3 });
      const newer = await f.client.deleteBehind('prices', { id: '3.0' });
      expect(newer.rowId).not.toBe(older.rowId);
      // Accepted before the flusher starts, so both are in its first batch.
      const flusher = await f.startFlusher({ batchDelayMs: 300 });
      await f.drained(20_000);
      expect(await listFailedWrites({ config: f.config })).toEqual([]);
      expect(await prices(f)).toEqual([]);
      // Deduplicated in the statement: one batch, one transaction, never halved. Without it the
      // tombstone upsert touches one row twice (21000) and the split writes the two deletes apart.
      expect(await metricValue(flusher.registry, 'walpurge_flusher_batches_total')).toBe(1);
      expect(await metricValue(flusher.registry, 'walpurge_flusher_batch_splits_total')).toBe(0);
      const { rows } = await f.pool.query<{ version: string }>(
        `SELECT version FROM ${f.config.flusher!.tombstoneTable} WHERE table_name = 'public.prices'`,
      );
      expect(rows).toEqual([{ version: newer.version }]);
    } finally {
      await f.close();
    }
  });

  it('citext keys keep their case; "Alice" and "alice" are one row in one statement, and a delete through one is not undone by an older write through the other', async (context) => {
    const f = await fixture();
    try {
      const citext = await f.pool.query('CREATE EXTENSION IF NOT EXISTS citext').catch((e: unknown) => e);
      if (citext instanceof Error)
        return context.skip(`the test PostgreSQL has no citext extension: ${citext.message}`);
      await f.pool.query(`CREATE TABLE users (id citext PRIMARY KEY, name text NOT NULL,
                                              _walpurge_version bigint NOT NULL DEFAULT 0)`);
      const older = await f.client.writeBehind('users', { id: 'Alice', name: 'older' });
      const newer = await f.client.writeBehind('users', { id: 'alice', name: 'newer' });
      // Each write keeps the case it was given: it is what PostgreSQL stores and the invalidator
      // renders keys from (folding in JavaScript could merge rows the database's locale keeps apart).
      expect(newer.rowId).not.toBe(older.rowId);
      expect(await f.cached('item:Alice')).toEqual({ id: 'Alice', name: 'older' });
      expect(await f.cached('item:alice')).toEqual({ id: 'alice', name: 'newer' });
      // Accepted before the flusher starts, so both are in its first batch: one statement, no split.
      const flusher = await f.startFlusher({ batchDelayMs: 300 });
      await f.drained(20_000);
      expect(await listFailedWrites({ config: f.config })).toEqual([]);
      const rows = async () =>
        (
          await f.pool.query<{ id: string; name: string; v: string }>(
            'SELECT id::text AS id, name, _walpurge_version::text AS v FROM users',
          )
        ).rows;
      expect(await rows()).toEqual([{ id: 'alice', name: 'newer', v: newer.version }]);
      expect(await metricValue(flusher.registry, 'walpurge_flusher_batch_splits_total')).toBe(0);

      // A delete through "ALICE", then the older write through "Alice" run again (a stalled job
      // re-run by another replica): the tombstone matches whatever the case, so the row stays gone.
      await f.client.deleteBehind('users', { id: 'ALICE' });
      await f.drained(20_000);
      expect(await rows()).toEqual([]);
      const connection = await f.pool.connect();
      const shape = await describeWriteTable(connection, 'public.users', '_walpurge_version').finally(() =>
        connection.release(),
      );
      await f.pool.query(upsertStatement(shape, ['id', 'name'], f.config.flusher!.tombstoneTable), [
        JSON.stringify([{ id: 'Alice', name: 'older', _walpurge_version: older.version }]),
        'public.users',
      ]);
      expect(await rows()).toEqual([]);
    } finally {
      await f.close();
    }
  });

  it('a write accepted while its row was failing for good is requeued, not left behind the failed job', async () => {
    const f = await fixture();
    try {
      await f.startFlusher({ batchDelayMs: 5 });
      await f.client.writeBehind('items', { id: 5, value: 'slow-boom', n: null });
      // Wait until the refused write is inside PostgreSQL (its trigger sleeping), then accept a
      // newer one: it lands between the failure and its mark.
      await waitFor('the refused write is running', async () => {
        const { rows } = await f.pool.query(
          `SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event = 'PgSleep'`,
        );
        return rows.length > 0;
      });
      await f.client.writeBehind('items', { id: 5, value: 'good', n: null });
      await waitFor('the newer write reached PostgreSQL', async () => (await values(f))[5] === 'good', {
        timeoutMs: 20_000,
      });
      await f.drained(20_000);
      // The newer value stays cached: purging the refused value must not drop it.
      expect(await f.cached('item:5')).toMatchObject({ value: 'good' });
    } finally {
      await f.close();
    }
  });
});

describe('write-behind: rows whose parent is not there yet', () => {
  const SCHEMA = `
    CREATE TABLE parents (id int PRIMARY KEY, _walpurge_version bigint NOT NULL DEFAULT 0);
    CREATE TABLE children (id int PRIMARY KEY, parent int NOT NULL REFERENCES parents (id),
                           _walpurge_version bigint NOT NULL DEFAULT 0);`;

  it('a foreign-key violation (23503) is retried for a while: the child lands once its parent does', async () => {
    const f = await fixture();
    try {
      await f.pool.query(SCHEMA);
      await f.startFlusher({ foreignKeyRetryMs: 30_000 });
      await f.client.writeBehind('children', { id: 1, parent: 7 }, { keys: [] });
      await waitFor('the child was tried and refused', async () => {
        const delayed = await f.queue.zcard(`${f.layout.bullPrefix}:${f.config.flusher!.queueName}:delayed`);
        return delayed > 0 || (await listFailedWrites({ config: f.config })).length > 0;
      });
      await f.client.writeBehind('parents', { id: 7 }, { keys: [] });
      await f.drained(30_000);
      const { rows } = await f.pool.query('SELECT id, parent FROM children');
      expect(rows).toEqual([{ id: 1, parent: 7 }]);
      expect(await listFailedWrites({ config: f.config })).toEqual([]);
    } finally {
      await f.close();
    }
  });

  it('…and fails with its reason once foreignKeyRetryMs has passed', async () => {
    const f = await fixture();
    try {
      await f.pool.query(SCHEMA);
      await f.startFlusher({ foreignKeyRetryMs: 1_000 });
      await f.client.writeBehind('children', { id: 1, parent: 8 }, { keys: [] });
      await waitFor(
        'the orphan failed',
        async () => (await listFailedWrites({ config: f.config })).length === 1,
        {
          timeoutMs: 20_000,
        },
      );
      const [failed] = await listFailedWrites({ config: f.config });
      expect(failed?.reason).toContain('23503');
    } finally {
      await f.close();
    }
  });
});
