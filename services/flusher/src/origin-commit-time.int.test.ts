import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { tombstoneTableDdl } from '@walpurge/write-behind';
import { createLogger } from '@walpurge/core';
import { createIsolatedDatabase, uniqueName, type IsolatedDatabase } from '@walpurge/testing';
import { BatchWriter } from './batch-writer.js';
import { FlushConnection } from './flush-connection.js';
import { pendingUpsert } from './test-support/pending-write.js';
import { capturingLogger } from './test-support/log-lines.js';

/**
 * The commit time logical decoding reports for the flusher's transactions. Its session is set up
 * with a replication origin, and PostgreSQL then stamps each commit with the session's origin
 * timestamp, which (unless every transaction sets its own) stays at the session's first commit:
 * every later batch would carry a commit time minutes in the past, and everything measured from
 * commitTs (the observer's timescales and time to consistency, lag) would be off by as much.
 */
const services = inject('services');
const TOMBSTONES = 'walpurge_write_behind_tombstones';
const slot = uniqueName('origin_ts');
const origin = uniqueName('origin_ts');
let db: IsolatedDatabase;
let pool: pg.Pool;

beforeAll(async () => {
  db = await createIsolatedDatabase(services.databaseUrl, 'origints');
  pool = new pg.Pool({ connectionString: db.url, max: 1 });
  await pool.query(
    'CREATE TABLE items (id int PRIMARY KEY, value text, _walpurge_version bigint NOT NULL DEFAULT 0)',
  );
  for (const statement of tombstoneTableDdl(TOMBSTONES)) await pool.query(statement);
  await pool.query("SELECT pg_create_logical_replication_slot($1, 'test_decoding')", [slot]);
});
afterAll(async () => {
  await pool?.query('SELECT pg_drop_replication_slot($1)', [slot]).catch(() => undefined);
  await pool
    ?.query('SELECT pg_replication_origin_drop($1) WHERE pg_replication_origin_oid($1) IS NOT NULL', [origin])
    .catch(() => undefined);
  await pool?.end();
  await db?.drop();
});

/** Microseconds since the epoch, PostgreSQL's clock. */
const databaseNow = async (): Promise<number> =>
  (await pool.query<{ us: number }>('SELECT extract(epoch FROM clock_timestamp())::float8 * 1e6 AS us'))
    .rows[0]!.us;

describe('flusher commit time', () => {
  it('each batch of one session is decoded with its own commit time, not the session’s first', async () => {
    const connection = new FlushConnection({
      url: db.url,
      origin,
      logger: createLogger({ level: 'silent' }),
    });
    const writer = new BatchWriter(connection, '_walpurge_version', TOMBSTONES);
    const written: Array<{ before: number; after: number }> = [];
    try {
      for (let batch = 1; batch <= 3; batch += 1) {
        const before = await databaseNow();
        await writer.write([pendingUpsert('items', batch, batch)]);
        written.push({ before, after: await databaseNow() });
      }
    } finally {
      await connection.close();
    }
    // test_decoding prints "COMMIT 1234 (at 2026-12-06 03:51:27.954116+00)".
    const { rows } = await pool.query<{ us: number }>(
      `SELECT extract(epoch FROM substring(data FROM '\\(at (.+)\\)$')::timestamptz)::float8 * 1e6 AS us
       FROM pg_logical_slot_get_changes($1, NULL, NULL, 'include-timestamp', '1', 'skip-empty-xacts', '1')
       WHERE data LIKE 'COMMIT%'`,
      [slot],
    );
    expect(rows).toHaveLength(3);
    rows.forEach(({ us }, i) => {
      expect(us).toBeGreaterThanOrEqual(written[i]!.before);
      expect(us).toBeLessThanOrEqual(written[i]!.after);
    });
  });

  it('a role without the grant to stamp commit times (set up before it was needed) still writes, and says so', async () => {
    // The grants of docs/deployment.md before pg_replication_origin_xact_setup joined them.
    const role = uniqueName('flusher_old_grants');
    const roleOrigin = uniqueName('origin_old');
    await pool.query(`CREATE ROLE ${role} LOGIN PASSWORD '${role}'`);
    await pool.query(
      `GRANT EXECUTE ON FUNCTION pg_replication_origin_oid(text), pg_replication_origin_create(text), pg_replication_origin_session_setup(text) TO ${role}`,
    );
    await pool.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON items, ${TOMBSTONES} TO ${role}`);
    const url = new URL(db.url);
    url.username = role;
    url.password = role;
    const { logger, lines } = capturingLogger('warn');
    const connection = new FlushConnection({ url: url.toString(), origin: roleOrigin, logger });
    try {
      const writer = new BatchWriter(connection, '_walpurge_version', TOMBSTONES);
      await writer.write([pendingUpsert('items', 41, 1)]);
      expect(connection.stampsCommitTime).toBe(false);
      expect((await pool.query('SELECT value FROM items WHERE id = 41')).rowCount).toBe(1);
      expect(lines.some((line) => String(line.msg).includes('pg_replication_origin_xact_setup'))).toBe(true);
    } finally {
      await connection.close();
      await pool
        .query('SELECT pg_replication_origin_drop($1) WHERE pg_replication_origin_oid($1) IS NOT NULL', [
          roleOrigin,
        ])
        .catch(() => undefined);
      await pool.query(`DROP OWNED BY ${role}`).catch(() => undefined);
      await pool.query(`DROP ROLE IF EXISTS ${role}`).catch(() => undefined);
    }
  });
});
