/**
 * Regenerates the pgoutput byte fixtures of src/decode/fixtures/ from a real PostgreSQL:
 *
 *   export WALPURGE_TEST_DATABASE_URL=postgres://postgres@localhost:5432/postgres   # a superuser, wal_level=logical
 *   pnpm exec tsx --conditions=@walpurge/source services/listener/src/test-support/capture-pgoutput-fixtures.ts
 *
 * It creates a scratch database, runs each scenario below, and reads what pgoutput produced with
 * pg_logical_slot_get_binary_changes (the very bytes START_REPLICATION would stream, in protocol
 * version 1, the listener's), under the listener's session settings (DateStyle, TimeZone, …). Each
 * fixture file has one message per line: `<lsn> <xid> <hex>`, the first two as PostgreSQL reported
 * them. types.json holds the scenario's own types (pg_type rows) for the assembler.
 * OIDs, xids, LSNs and commit times change with every capture; the tests read them from the
 * fixtures rather than hard-coding them.
 */
import { writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { createIsolatedDatabase, uniqueName } from '@walpurge/testing';
import { REPLICATION_SESSION_OPTIONS } from '../decode/value-converters.js';

const FIXTURES = new URL('../decode/fixtures/', import.meta.url);

const SETUP = `
  CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
  CREATE DOMAIN positive AS int CHECK (VALUE > 0);
  CREATE TABLE kinds (
    id int PRIMARY KEY, n numeric, f8 float8, f4 float4, ts timestamp, tstz timestamptz, d date,
    by bytea, j json, jb jsonb, m mood, dom positive, ia int[], ta text[], ma mood[], big int8,
    b bool, t text, tsa timestamptz[]);
  CREATE TABLE docs (id int PRIMARY KEY, title text, body text);
  ALTER TABLE docs ALTER COLUMN body SET STORAGE EXTERNAL;
  CREATE TABLE full_rows (id int PRIMARY KEY, v text);
  ALTER TABLE full_rows REPLICA IDENTITY FULL;
  CREATE TABLE full_docs (id int PRIMARY KEY, title text, body text);
  ALTER TABLE full_docs ALTER COLUMN body SET STORAGE EXTERNAL;
  ALTER TABLE full_docs REPLICA IDENTITY FULL;
  CREATE TABLE codes (code text NOT NULL, label text);
  CREATE UNIQUE INDEX codes_code ON codes (code);
  ALTER TABLE codes REPLICA IDENTITY USING INDEX codes_code;
  CREATE TABLE parent (id serial PRIMARY KEY);
  CREATE TABLE child (id int PRIMARY KEY, parent_id int REFERENCES parent);
  CREATE PUBLICATION fixtures FOR TABLE kinds, docs, full_rows, full_docs, codes, parent, child;
`;

/** 20,000 bytes that pglz cannot shrink below the TOAST threshold (and EXTERNAL storage anyway). */
const BIG = `(SELECT string_agg(md5(i::text), '') FROM generate_series(1, 625) i)`;

interface Scenario {
  name: string;
  /** Each entry runs as its own statement (so as its own transaction unless it says BEGIN). */
  statements: string[];
  /** Extra pgoutput options (the listener sends none beyond the version and publication). */
  options?: string[];
}

const SCENARIOS: Scenario[] = [
  {
    name: 'types',
    statements: [
      `BEGIN`,
      // Ordinary values, multibyte UTF-8, quoting inside arrays, json whitespace kept, extreme int8.
      `INSERT INTO kinds VALUES (1,
        '123456789012345678901234567890.123456789012345678901234567890', 0.1, 1.5,
        '2026-11-22 14:00:00.123456', '2026-11-22 14:00:00.000001+05:30', '2026-02-28',
        '\\xdeadbeef00', '{"b": 1,  "a": [1, 2]}', '{"b": 1, "a": [1, 2]}', 'happy', 5,
        '{1,NULL,3}', '{"a,b","c\\"d",NULL,"NULL"}', '{sad,ok}', 9223372036854775807, true,
        'héllo ✓ "q" \\ x', '{"2026-11-22 14:00:00+00","infinity"}')`,
      // Special values: NaN, negative zero, infinities, BC, empty bytea / text, JSON scalars.
      `INSERT INTO kinds VALUES (2, 'NaN', '-0', 'NaN', 'infinity', '-infinity', '0044-03-15 BC',
        '\\x', 'null', '"str"', 'sad', 1, '{}', '{""}', '{}', -9223372036854775808, false, '',
        '{}')`,
      `INSERT INTO kinds VALUES (3, 'Infinity', '-Infinity', '-0', '0044-03-15 12:00:00.5 BC',
        '294276-12-31 23:59:59.999999+00', 'infinity', '\\x00ff', '[]', '{}', 'ok', 2147483647,
        '{{1,2},{3,4}}', '{NULL}', '{happy}', 0, true, 'NULL', '{NULL}')`,
      `INSERT INTO kinds VALUES (4, '-0.000', 1e308, 3.4e38, '1999-12-31 23:59:59.999999',
        '2000-01-01 00:00:00+00', '-infinity', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
        NULL, NULL, NULL)`,
      `INSERT INTO kinds VALUES (5, ('-' || repeat('9', 300) || '.' || repeat('1', 200))::numeric, 5e-324,
        1.17549435e-38, '2026-01-01 00:00:00', '1900-01-01 00:00:00+00', '2026-01-01', NULL, NULL,
        NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`,
      `COMMIT`,
    ],
  },
  {
    name: 'update-delete',
    statements: [
      `INSERT INTO kinds (id, t) VALUES (10, 'ten')`,
      // Key changed: pgoutput sends the old key ('K') then the new row.
      `UPDATE kinds SET id = 11 WHERE id = 10`,
      // Key unchanged: only the new row.
      `UPDATE kinds SET t = NULL, n = 42 WHERE id = 11`,
      `DELETE FROM kinds WHERE id = 11`,
    ],
  },
  {
    name: 'toast',
    statements: [
      `INSERT INTO docs VALUES (1, 'draft', ${BIG})`,
      // body unchanged and stored out of line: sent as 'u' (value not sent).
      `UPDATE docs SET title = 'final' WHERE id = 1`,
      `UPDATE docs SET body = 'short' WHERE id = 1`,
      `DELETE FROM docs WHERE id = 1`,
    ],
  },
  {
    name: 'identity-full',
    statements: [
      `INSERT INTO full_rows VALUES (1, 'a')`,
      `UPDATE full_rows SET v = 'b' WHERE id = 1`,
      `UPDATE full_rows SET id = 2 WHERE id = 1`,
      `DELETE FROM full_rows WHERE id = 2`,
    ],
  },
  {
    name: 'toast-full',
    statements: [
      `INSERT INTO full_docs VALUES (1, 'draft', ${BIG})`,
      // Under FULL the old row comes whole (detoasted); the new row still marks body 'u'.
      `UPDATE full_docs SET title = 'final' WHERE id = 1`,
    ],
  },
  {
    name: 'identity-index',
    statements: [
      `INSERT INTO codes VALUES ('a', 'first')`,
      `UPDATE codes SET code = 'b' WHERE code = 'a'`,
      `UPDATE codes SET label = 'second' WHERE code = 'b'`,
      `DELETE FROM codes WHERE code = 'b'`,
    ],
  },
  {
    name: 'truncate',
    statements: [
      `INSERT INTO parent DEFAULT VALUES`,
      `INSERT INTO child VALUES (1, 1)`,
      `TRUNCATE parent RESTART IDENTITY CASCADE`,
      `TRUNCATE docs, full_rows`,
      `TRUNCATE child CONTINUE IDENTITY RESTRICT`,
      `TRUNCATE child, parent RESTART IDENTITY`,
    ],
  },
  {
    name: 'origin',
    statements: [
      `SELECT pg_replication_origin_session_setup('fixtures_origin')`,
      `BEGIN`,
      `SELECT pg_replication_origin_xact_setup('0/AB', '2020-01-02 03:04:05.678+00')`,
      `INSERT INTO full_rows VALUES (7, 'from elsewhere')`,
      `COMMIT`,
      `SELECT pg_replication_origin_session_reset()`,
    ],
  },
  {
    name: 'message',
    options: ['messages', 'true'],
    statements: [
      // Not transactional: decoded at once, but only read once WAL is flushed (by the commit below).
      `SELECT pg_logical_emit_message(false, 'walpurge', '\\x00ff'::bytea)`,
      `BEGIN`,
      `SELECT pg_logical_emit_message(true, 'walpurge', 'in a transaction')`,
      `INSERT INTO full_rows VALUES (8, 'x')`,
      `COMMIT`,
    ],
  },
];

export interface CapturedFixtures {
  serverVersion: string;
  /** Lines `<lsn> <xid> <hex>` by scenario name. */
  scenarios: Map<string, string[]>;
  types: unknown[];
}

/**
 * Runs every scenario on a scratch database of `adminUrl` and returns what pgoutput produced. The
 * origin is cluster-wide: a test passes its own name so as not to meet a concurrent capture.
 */
export async function captureFixtures(
  adminUrl: string,
  origin = 'fixtures_origin',
): Promise<CapturedFixtures> {
  const db = await createIsolatedDatabase(adminUrl, 'pgoutput_fixtures');
  const client = new pg.Client({ connectionString: db.url, options: REPLICATION_SESSION_OPTIONS });
  await client.connect();
  const slot = uniqueName('fixtures');
  try {
    await client.query(SETUP);
    // One left over by an interrupted capture is dropped first.
    await client.query(
      'SELECT pg_replication_origin_drop(roname) FROM pg_replication_origin WHERE roname = $1',
      [origin],
    );
    await client.query('SELECT pg_replication_origin_create($1)', [origin]);
    await client.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [slot]);
    const { rows: version } = await client.query<{ v: string }>(
      "SELECT current_setting('server_version') AS v",
    );
    const scenarios = new Map<string, string[]>();
    for (const scenario of SCENARIOS) {
      for (const statement of scenario.statements)
        await client.query(statement.replaceAll("'fixtures_origin'", `'${origin}'`));
      const options = ['proto_version', '1', 'publication_names', 'fixtures', ...(scenario.options ?? [])];
      const placeholders = options.map((_, i) => `$${i + 2}`).join(', ');
      const { rows } = await client.query<{ lsn: string; xid: string; hex: string }>(
        `SELECT lsn::text, xid::text, encode(data, 'hex') AS hex
           FROM pg_logical_slot_get_binary_changes($1, NULL, NULL, ${placeholders})`,
        [slot, ...options],
      );
      scenarios.set(
        scenario.name,
        rows.map((row) => `${row.lsn} ${row.xid} ${row.hex}`),
      );
    }
    const { rows: types } = await client.query(
      `SELECT oid::int AS oid, typname AS name, typtype AS type, typcategory AS category,
              typelem::int AS "elementOid", typbasetype::int AS "baseTypeOid", typdelim AS delimiter
         FROM pg_type WHERE typname IN ('mood', '_mood', 'positive') ORDER BY typname`,
    );
    return { serverVersion: version[0]?.v ?? 'unknown', scenarios, types };
  } finally {
    await client.query('ROLLBACK').catch(() => {});
    await client.query('SELECT pg_drop_replication_slot($1)', [slot]).catch(() => {});
    await client.query('SELECT pg_replication_origin_drop($1)', [origin]).catch(() => {});
    await client.end();
    await db.drop();
  }
}

async function main(): Promise<void> {
  const adminUrl = process.env['WALPURGE_TEST_DATABASE_URL'];
  if (!adminUrl)
    throw new Error('set WALPURGE_TEST_DATABASE_URL (a superuser on a wal_level=logical server)');
  const captured = await captureFixtures(adminUrl);
  for (const [name, lines] of captured.scenarios) {
    writeFileSync(new URL(`${name}.hex`, FIXTURES), `${lines.join('\n')}\n`);
    console.log(`${name}: ${lines.length} messages`);
  }
  const meta = { serverVersion: captured.serverVersion, types: captured.types };
  writeFileSync(new URL('types.json', FIXTURES), `${JSON.stringify(meta, null, 2)}\n`);
}

// Imported by the freshness test; run as a script, it rewrites the fixtures.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
