import { readFileSync, rmSync, writeFileSync, mkdtempSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createIsolatedDatabase, uniqueName, waitFor } from '@walpurge/testing';
import { demoFiles } from './quickstart/demo-files.js';
import { spawnWalpurge, type WalpurgeProcess } from './testing/walpurge-process.js';
import { captureIo } from './testing/capture-io.js';
import { runCli } from './cli.js';

/** `walpurge quickstart` (what `npm start` runs) as a user runs it: a real process, its terminal output. */
const children: WalpurgeProcess[] = [];
afterAll(async () => {
  for (const child of children) if (child.child.exitCode === null) await child.killNow();
});

function refusesConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

const INVALIDATION = /^\+\s*\d+\.\ds {2}UPDATE walpurge_demo\.\w+ id=\d+\s+commit→purge\s+\d+ ms {2}.+$/gm;
const TOTALS =
  /^totals: (\d+) changes, (\d+) invalidated, (\d+) cache entries purged; commit→purge p50 \d+ ms, p95 \d+ ms, max \d+ ms$/m;

function checkDemoOutput(stdout: string): void {
  const invalidations = stdout.match(INVALIDATION) ?? [];
  expect(invalidations.length, stdout).toBeGreaterThanOrEqual(5);
  // Each line checks Redis after the purge: the entries cached before the write are gone.
  expect(stdout).toMatch(/\[demo:product:\d+ gone, demo:product_by_sku:[\w-]+ gone/);
  expect(stdout).not.toContain('STILL CACHED');
  // The when.changed filter is visible too: bio edits purge nothing.
  expect(stdout).toContain('no purge: user: update changed none of when.changed: [email, name]');
  const totals = TOTALS.exec(stdout);
  expect(totals, stdout).not.toBeNull();
  const [, changes, invalidated, entries] = (totals ?? []).map(Number);
  expect(invalidated).toBeGreaterThanOrEqual(invalidations.length);
  expect(changes).toBeGreaterThan(invalidated ?? 0);
  expect(entries).toBeGreaterThan(invalidated ?? 0);
  expect(stdout.endsWith('\ncleaning up…\ndone.\n')).toBe(true);
}

describe('walpurge quickstart', () => {
  it('on a machine with nothing configured: starts PostgreSQL and Redis, shows invalidations, cleans up', async () => {
    const quickstart = spawnWalpurge(['quickstart', '--duration', '2', '--interval', '0.1'], {});
    children.push(quickstart);
    expect(await quickstart.exited, quickstart.output()).toBe(0);
    const stdout = quickstart.stdout();
    const postgres =
      /^ {2}started PostgreSQL on 127\.0\.0\.1:(\d+) \(wal_level=logical, data in a temp dir\)$/m.exec(
        stdout,
      );
    const redis = /^ {2}started Redis on 127\.0\.0\.1:(\d+)$/m.exec(stdout);
    expect(postgres, stdout).not.toBeNull();
    expect(redis, stdout).not.toBeNull();
    expect(stdout).toContain('walpurge running in embedded mode (transport: inline)');
    expect(stdout).toContain('Updating demo rows for 2 s; each line is one invalidation:');
    checkDemoOutput(stdout);
    // What it started is gone.
    expect(await refusesConnections(Number(postgres?.[1]))).toBe(true);
    expect(await refusesConnections(Number(redis?.[1]))).toBe(true);
  });

  /** The user's own tables: a `users` of another shape, with rows and the default REPLICA IDENTITY. */
  async function userDatabase(): Promise<{
    url: string;
    name: string;
    snapshot(): Promise<unknown>;
    drop(): Promise<void>;
  }> {
    const database = await createIsolatedDatabase(inject('services').databaseUrl, 'cli_quickstart');
    const query = async <T extends pg.QueryResultRow>(sql: string): Promise<T[]> => {
      const db = new pg.Client({ connectionString: database.url });
      await db.connect();
      try {
        return (await db.query<T>(sql)).rows;
      } finally {
        await db.end();
      }
    };
    await query(
      "CREATE TABLE users (id bigint PRIMARY KEY, email text, name text); INSERT INTO users VALUES (1, 'mine@corp', 'Mine'), (2, 'yours@corp', 'Yours')",
    );
    const snapshot = async (): Promise<unknown> => ({
      users: await query('SELECT * FROM public.users ORDER BY id'),
      identity: await query("SELECT relreplident FROM pg_class WHERE oid = 'public.users'::regclass"),
      tables: await query(
        "SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2",
      ),
      schemas: await query("SELECT nspname FROM pg_namespace WHERE nspname = 'walpurge_demo'"),
      slots: await query('SELECT slot_name FROM pg_replication_slots WHERE database = current_database()'),
      publications: await query('SELECT pubname FROM pg_publication'),
    });
    return { url: database.url, name: database.name, snapshot, drop: () => database.drop() };
  }

  it("in a user's database: asks first, works only in its own schema, and leaves the user's tables, slots and keys as they were", async () => {
    const services = inject('services');
    const database = await userDatabase();
    const dir = mkdtempSync(join(tmpdir(), 'walpurge-quickstart-'));
    const slot = uniqueName('quickstart');
    const redis = new Redis(services.redisUrl);
    try {
      const before = await database.snapshot();
      expect(before).toMatchObject({
        schemas: [],
        slots: [],
        publications: [],
        identity: [{ relreplident: 'd' }],
      });
      // The example rules, with a slot and key prefix of their own on the shared servers.
      const config = join(dir, 'walpurge.yaml');
      const example = readFileSync(demoFiles().config, 'utf8');
      const own = example
        .replace('slot: walpurge_demo', `slot: ${slot}`)
        .replace('publication: walpurge_demo', `publication: ${slot}`)
        .replace('  url: ${REDIS_URL}\n', `  url: \${REDIS_URL}\n  keyPrefix: '${slot}:'\n`);
      expect(own).toContain(`keyPrefix: '${slot}:'`);
      writeFileSync(config, own);
      const env = { DATABASE_URL: database.url, REDIS_URL: services.redisUrl };
      // The user's own keys under the same prefix, with tag names the demo's rules also use.
      await redis.sadd(`${slot}:tag:products`, 'mine:1');
      await redis.sadd(`${slot}:tag:category-1`, 'mine:2');
      await redis.set(`${slot}:demo:product:1`, 'mine');
      const userKeys = async (): Promise<unknown> => ({
        products: await redis.smembers(`${slot}:tag:products`),
        category: await redis.smembers(`${slot}:tag:category-1`),
        product: await redis.get(`${slot}:demo:product:1`),
        all: (await redis.keys(`${slot}:*`)).sort(),
      });
      const keysBefore = await userKeys();

      // No terminal to ask on and no --yes: it says what it would create, and creates nothing.
      const refused = spawnWalpurge(['quickstart', '--config', config, '--duration', '1'], env);
      children.push(refused);
      expect(await refused.exited, refused.output()).toBe(2);
      expect(refused.output()).toContain('quickstart did not start the database at 127.0.0.1:');
      expect(refused.output()).toContain(`logical replication slot ${slot}`);
      expect(refused.output()).toContain('schema walpurge_demo');
      expect(refused.output()).toContain('pass --yes');
      expect(await database.snapshot()).toEqual(before);

      // A slot of that name already there (someone else's, or a killed demo's) is never taken over.
      const admin = new pg.Client({ connectionString: database.url });
      await admin.connect();
      try {
        await admin.query("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", [slot]);
        const taken = spawnWalpurge(['quickstart', '--config', config, '--duration', '1', '--yes'], env);
        children.push(taken);
        expect(await taken.exited, taken.output()).toBe(2);
        expect(taken.output()).toContain(`replication slot ${slot} already exists`);
        await admin.query('SELECT pg_drop_replication_slot($1)', [slot]);
      } finally {
        await admin.end();
      }
      expect(await database.snapshot()).toEqual(before);

      const quickstart = spawnWalpurge(['quickstart', '--config', config, '--interval', '0.1', '--yes'], env);
      children.push(quickstart);
      await waitFor(
        'a few invalidations',
        async () => (quickstart.stdout().match(INVALIDATION) ?? []).length >= 6,
        { timeoutMs: 30_000 },
      );
      quickstart.child.kill('SIGINT');
      expect(await quickstart.exited, quickstart.output()).toBe(0);
      const stdout = quickstart.stdout();
      expect(stdout).not.toContain('started PostgreSQL');
      expect(stdout).toContain('  using DATABASE_URL (127.0.0.1:');
      expect(stdout).toContain('  demo schema walpurge_demo ready');
      expect(stdout).toContain('Updating demo rows; each line is one invalidation (Ctrl-C to stop):');
      checkDemoOutput(stdout);

      // The user's table, its REPLICA IDENTITY, every other table, slot and publication: as before.
      // The demo's schema (with walpurge's state tables), slot and publication are gone.
      expect(await database.snapshot()).toEqual(before);
      // The demo's cache keys lived under its own prefix and were removed at the end; the user's
      // keys and tag sets under the configured prefix are as they were.
      expect(await userKeys()).toEqual(keysBefore);
    } finally {
      const keys = await redis.keys(`${slot}:*`);
      if (keys.length > 0) await redis.unlink(...keys);
      redis.disconnect();
      await database.drop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('on a terminal it asks, and an answer other than yes creates nothing', async () => {
    const services = inject('services');
    const database = await userDatabase();
    try {
      const before = await database.snapshot();
      const questions: string[] = [];
      const io = captureIo(
        { DATABASE_URL: database.url, REDIS_URL: services.redisUrl },
        { prompt: async (question) => (questions.push(question), 'n') },
      );
      expect(await runCli(['quickstart', '--duration', '1'], io), io.err()).toBe(1);
      expect(questions).toEqual(['  and drop them when the demo stops. Go ahead? [y/N] ']);
      expect(io.out()).toContain('logical replication slot walpurge_demo');
      expect(io.err()).toContain('not confirmed; nothing created');
      expect(await database.snapshot()).toEqual(before);
    } finally {
      await database.drop();
    }
  });

  it('exits 1, not 0, when walpurge stops on a fatal error mid-demo (its slot dropped under it)', async () => {
    const services = inject('services');
    const database = await userDatabase();
    const slot = uniqueName('quickstart');
    const dir = mkdtempSync(join(tmpdir(), 'walpurge-quickstart-'));
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    try {
      const config = join(dir, 'walpurge.yaml');
      writeFileSync(
        config,
        readFileSync(demoFiles().config, 'utf8')
          .replace('slot: walpurge_demo', `slot: ${slot}`)
          .replace('publication: walpurge_demo', `publication: ${slot}`)
          .replace('  url: ${REDIS_URL}\n', `  url: \${REDIS_URL}\n  keyPrefix: '${slot}:'\n`),
      );
      const quickstart = spawnWalpurge(['quickstart', '--config', config, '--interval', '0.1', '--yes'], {
        DATABASE_URL: database.url,
        REDIS_URL: services.redisUrl,
      });
      children.push(quickstart);
      await waitFor('an invalidation', async () => INVALIDATION.test(quickstart.stdout()), {
        timeoutMs: 30_000,
      });
      INVALIDATION.lastIndex = 0;
      // Someone drops the slot: the listener's reconnect finds it gone and refuses to go on.
      await waitFor(
        'the slot dropped',
        async () => {
          await admin.query(
            'SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active',
            [slot],
          );
          const dropped = await admin.query(
            'SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active',
            [slot],
          );
          return dropped.rowCount === 1;
        },
        { timeoutMs: 20_000 },
      );
      expect(await quickstart.exited, quickstart.output()).toBe(1);
      expect(quickstart.output()).toContain('walpurge stopped:');
    } finally {
      await admin.end();
      await database.drop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
