/**
 * The database role of docs/deployment.md, as deploy/compose/postgres-init.sql creates it, against a
 * real PostgreSQL: a role with exactly those privileges (and no superuser) can do every database
 * operation walpurge performs — read the published tables, create, stream and drop the logical slot,
 * emit heartbeats, and for write-behind upsert, create its tombstone table and mark its commits with
 * a replication origin. If PostgreSQL needs one more grant than the docs list, this fails.
 */
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createIsolatedDatabase, uniqueName, type IsolatedDatabase } from '@walpurge/testing';
import { repoPath } from '../unit/deploy/workspace.js';

const services = inject('services');

async function withClient<T>(url: string, use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}

function asRole(url: string, role: string, password: string): string {
  const parsed = new URL(url);
  parsed.username = role;
  parsed.password = password;
  return parsed.toString();
}

describe('deploy/compose/postgres-init.sql: the walpurge role of docs/deployment.md', () => {
  let database: IsolatedDatabase;
  const role = uniqueName('walpurge_role');
  const origin = uniqueName('wb_origin');
  const slot = uniqueName('slot');
  let roleUrl: string;

  beforeAll(async () => {
    database = await createIsolatedDatabase(services.databaseUrl, 'deploy_privileges');
    // The owner (here the admin) creates the demo tables, then runs the role script with a role
    // name of this test's own: roles are cluster-wide and other suites share the server.
    const schema = readFileSync(repoPath('examples/demo/schema.sql'), 'utf8');
    const script = readFileSync(repoPath('deploy/compose/postgres-init.sql'), 'utf8').replace(
      /\bwalpurge\b/g,
      role,
    );
    await withClient(database.url, async (client) => {
      await client.query(schema);
      await client.query(script);
    });
    roleUrl = asRole(database.url, role, role);
  });

  afterAll(async () => {
    await withClient(services.databaseUrl, (client) =>
      client.query('SELECT pg_replication_origin_drop($1) WHERE pg_replication_origin_oid($1) IS NOT NULL', [
        origin,
      ]),
    ).catch(() => undefined);
    await withClient(database.url, (client) => client.query(`DROP OWNED BY ${role}`)).catch(() => undefined);
    await database?.drop();
    await withClient(services.databaseUrl, (client) => client.query(`DROP ROLE IF EXISTS ${role}`));
  });

  it('is not a superuser, and reads the tables the rules name', async () => {
    await withClient(roleUrl, async (client) => {
      const { rows } = await client.query<{ rolsuper: boolean; rolreplication: boolean }>(
        'SELECT rolsuper, rolreplication FROM pg_roles WHERE rolname = current_user',
      );
      expect(rows[0]).toEqual({ rolsuper: false, rolreplication: true });
      const users = await client.query('SELECT id, email FROM public.users ORDER BY id LIMIT 1');
      expect(users.rowCount).toBe(1);
    });
  });

  it('creates the slot, reads committed changes through the publication, emits heartbeats and drops the slot', async () => {
    await withClient(roleUrl, (client) =>
      client.query("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", [slot]),
    );
    await withClient(database.url, (client) =>
      client.query("UPDATE public.users SET name = name || '!' WHERE id = 1"),
    );
    await withClient(roleUrl, async (client) => {
      // The listener's idle-slot heartbeat (database.heartbeatIntervalMs).
      await client.query("SELECT pg_logical_emit_message(true, 'walpurge', 'heartbeat')");
      const { rows } = await client.query<{ changes: string }>(
        `SELECT count(*) AS changes FROM pg_logical_slot_peek_binary_changes($1, NULL, NULL,
           'proto_version', '1', 'publication_names', 'walpurge_demo', 'messages', 'true')`,
        [slot],
      );
      // BEGIN, RELATION, UPDATE, COMMIT at least, plus the heartbeat message.
      expect(Number(rows[0]?.changes)).toBeGreaterThanOrEqual(4);
      // `walpurge slot drop` runs as the same role.
      await client.query('SELECT pg_drop_replication_slot($1)', [slot]);
    });
  });

  it('lets the flusher mark its commits with a replication origin, upsert, and create its tombstone table', async () => {
    await withClient(roleUrl, async (client) => {
      // The flusher's sequence (services/flusher/src/origin.ts).
      await client.query(
        'SELECT pg_replication_origin_create($1) WHERE pg_replication_origin_oid($1) IS NULL',
        [origin],
      );
      await client.query('SELECT pg_replication_origin_session_setup($1)', [origin]);
      await client.query('BEGIN');
      await client.query(
        `INSERT INTO public.categories (id, slug, name) VALUES (99, 'deploy-test', 'Deploy test')
         ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name`,
      );
      await client.query('DELETE FROM public.categories WHERE id = 99');
      await client.query('COMMIT');
      await client.query(
        'CREATE TABLE IF NOT EXISTS public.walpurge_write_behind_tombstones (row_id text PRIMARY KEY, version bigint NOT NULL)',
      );
      await client.query('DROP TABLE public.walpurge_write_behind_tombstones');
    });
  });
});
