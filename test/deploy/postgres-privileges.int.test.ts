/**
 * The database role of docs/deployment.md, as deploy/compose/postgres-init.sql creates it, against a
 * real PostgreSQL: a role with exactly those privileges (and no superuser) can do every database
 * operation walpurge performs — read the published tables, create, stream and drop the logical slot,
 * emit heartbeats, and for write-behind upsert, create its tombstone table and mark its commits with
 * a replication origin. If PostgreSQL needs one more grant than the docs list, this fails. The real
 * `walpurge validate` and `walpurge run` (the compose stack's rules) then run as that role too.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { runCli, type CliIo } from 'walpurge';
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
      await client.query("SELECT pg_replication_origin_xact_setup('0/0', clock_timestamp())");
      await client.query('COMMIT');
      await client.query(
        'CREATE TABLE IF NOT EXISTS public.walpurge_write_behind_tombstones (row_id text PRIMARY KEY, version bigint NOT NULL)',
      );
      await client.query('DROP TABLE public.walpurge_write_behind_tombstones');
    });
  });

  describe('the real walpurge as this role, with the rules of the compose stack (examples/walpurge.yaml)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'walpurge-deploy-role-'));
    const runSlot = uniqueName('run_slot');
    const prefix = uniqueName('deployrole');
    let configFile: string;
    let redis: Redis;

    beforeAll(() => {
      // The example config as compose mounts it, with a slot and key prefix of this test's own
      // (slots are cluster-wide, the Redis is shared); the publication is the init script's.
      const text = readFileSync(repoPath('examples/walpurge.yaml'), 'utf8')
        .replace(/^(\s*slot:\s*)\S+$/m, `$1${runSlot}`)
        .replace(/'demo:/g, `'${prefix}:`);
      expect(text).toContain(`slot: ${runSlot}`);
      expect(text).toContain('publication: walpurge_demo');
      configFile = join(dir, 'walpurge.yaml');
      writeFileSync(configFile, text);
      redis = new Redis(services.redisUrl);
    });

    afterAll(async () => {
      redis?.disconnect();
      await withClient(services.databaseUrl, (client) =>
        client.query(
          'SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active',
          [runSlot],
        ),
      ).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    });

    const io = (signal?: AbortSignal): CliIo & { output: () => string } => {
      let output = '';
      return {
        stdout: { write: (text: string) => (output += text) },
        stderr: { write: (text: string) => (output += text) },
        env: { DATABASE_URL: roleUrl, REDIS_URL: services.redisUrl, LOG_LEVEL: 'error' },
        ...(signal ? { signal } : {}),
        output: () => output,
      };
    };

    it('`walpurge validate` passes its live checks (tables, columns, replica identity, publication)', async () => {
      const cli = io();
      const code = await runCli(['validate', '--config', configFile], cli);
      expect(cli.output()).toMatch(/OK \(3 rules; live checks against .* passed\)/);
      expect(code).toBe(0);
    });

    it('`walpurge run --role all` creates its slot, streams a committed change and purges its key', async () => {
      const stop = new AbortController();
      const cli = io(stop.signal);
      const exited = runCli(['run', '--config', configFile, '--role', 'all', '--http-port', '0'], cli);
      try {
        // Wait for the listener to stream its slot, so the update below is after the slot's start.
        // A slot is active from the start of its creation, which waits for every transaction then
        // running on the server (other test files' too) before it has its start point: until then
        // confirmed_flush_lsn is null, and a change committed meanwhile is before the slot's start.
        const streaming = async (): Promise<boolean> =>
          withClient(database.url, async (client) => {
            const { rows } = await client.query<{ active: boolean; started: boolean }>(
              'SELECT active, confirmed_flush_lsn IS NOT NULL AS started FROM pg_replication_slots WHERE slot_name = $1',
              [runSlot],
            );
            return rows[0]?.active === true && rows[0].started;
          });
        await waitFor(streaming, () => `slot ${runSlot} never became active:\n${cli.output()}`);
        await redis.set(`${prefix}:user:1`, 'cached');
        await withClient(database.url, (client) =>
          client.query("UPDATE public.users SET name = name || '?' WHERE id = 1"),
        );
        await waitFor(
          async () => (await redis.exists(`${prefix}:user:1`)) === 0,
          () => `${prefix}:user:1 was never purged:\n${cli.output()}`,
        );
      } finally {
        stop.abort();
      }
      expect(await exited, cli.output()).toBe(0);
    });
  });
});

/** Polls `check` every 100 ms for up to 30 s (a deadline for a hang, not a timing assertion). */
async function waitFor(check: () => Promise<boolean>, explain: () => string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(explain());
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
