import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createIsolatedDatabase, uniqueName, type IsolatedDatabase } from './index.js';

describe('PostgreSQL from the test environment', () => {
  const { databaseUrl } = inject('services');
  let db: IsolatedDatabase;
  let client: pg.Client;

  beforeAll(async () => {
    db = await createIsolatedDatabase(databaseUrl, 'pg_smoke');
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
  });

  afterAll(async () => {
    await client?.end();
    await db?.drop();
  });

  it('runs with wal_level=logical', async () => {
    const { rows } = await client.query<{ wal_level: string }>('SHOW wal_level');
    expect(rows[0]?.wal_level).toBe('logical');
  });

  it('decodes an inserted row from a test_decoding slot', async () => {
    const slot = uniqueName('slot');
    await client.query('CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)');
    await client.query("SELECT pg_create_logical_replication_slot($1, 'test_decoding')", [slot]);
    await client.query("INSERT INTO items VALUES (1, 'hello')");

    const { rows } = await client.query<{ data: string }>(
      'SELECT data FROM pg_logical_slot_get_changes($1, NULL, NULL)',
      [slot],
    );
    expect(rows.map((row) => row.data)).toContain(
      `table public.items: INSERT: id[integer]:1 name[text]:'hello'`,
    );
  });

  it('decodes an inserted row from a pgoutput slot with a publication', async () => {
    const slot = uniqueName('slot');
    const publication = uniqueName('pub');
    await client.query('CREATE TABLE widgets (id int PRIMARY KEY, label text NOT NULL)');
    await client.query(`CREATE PUBLICATION ${publication} FOR TABLE widgets`);
    await client.query("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", [slot]);
    await client.query("INSERT INTO widgets VALUES (7, 'sprocket')");

    const { rows } = await client.query<{ data: Buffer }>(
      "SELECT data FROM pg_logical_slot_peek_binary_changes($1, NULL, NULL, 'proto_version', '1', 'publication_names', $2)",
      [slot, publication],
    );
    // pgoutput messages start with a type byte: R(elation) describes the table, I(nsert) the row.
    const ofType = (type: string): Buffer[] =>
      rows.map((row) => row.data).filter((data) => data[0] === type.charCodeAt(0));
    expect(ofType('R').some((message) => message.includes('widgets'))).toBe(true);
    expect(ofType('I').some((message) => message.includes('sprocket'))).toBe(true);
  });

  it('drop() removes a database that still has a session and a replication slot', async () => {
    const doomed = await createIsolatedDatabase(databaseUrl, 'doomed');
    const session = new pg.Client({ connectionString: doomed.url });
    session.on('error', () => {}); // it is terminated on purpose
    await session.connect();
    await session.query("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", [uniqueName('slot')]);

    await doomed.drop();
    await session.end().catch(() => {});

    const admin = new pg.Client({ connectionString: databaseUrl });
    await admin.connect();
    try {
      const dbs = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [doomed.name]);
      const slots = await admin.query('SELECT 1 FROM pg_replication_slots WHERE database = $1', [
        doomed.name,
      ]);
      expect(dbs.rowCount).toBe(0);
      expect(slots.rowCount).toBe(0);
    } finally {
      await admin.end();
    }
    await doomed.drop(); // idempotent
  });
});
