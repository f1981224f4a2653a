import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  createIsolatedDatabase,
  freePort,
  startLocalPostgres,
  uniqueName,
  waitFor,
  type IsolatedDatabase,
  type LocalPostgres,
} from '@walpurge/testing';
import { runCli } from '../cli.js';
import { captureIo } from '../testing/capture-io.js';
import { waitUntilReady } from '../testing/walpurge-process.js';

/**
 * `walpurge slot reset --purge-all`, the way out of a lost slot, with the real `run`: after the slot
 * was dropped, `run` refuses and names the gap; a reset whose purge fails changes nothing; a
 * complete reset purges the entry made stale in the gap, and `run` streams again.
 */
const services = inject('services');
const slot = uniqueName('reset');
const prefix = `${slot}:`;
const dir = mkdtempSync(join(tmpdir(), 'walpurge-reset-'));
let database: IsolatedDatabase;
let db: pg.Client;
let redis: Redis;

function config(name: string, redisUrl: string, extra = ''): string {
  const file = join(dir, name);
  writeFileSync(
    file,
    `transport: inline
database:
  url: \${DATABASE_URL}
  slot: ${slot}
  publication: ${slot}
  statusIntervalMs: 500
${extra}redis:
  url: ${redisUrl}
  keyPrefix: '${prefix}'
invalidator:
  retryMaxMs: 100
log:
  level: warn
rules:
  - table: public.items
    redis:
      keys: ['item:{id}']
`,
  );
  return file;
}

let configFile: string;
const env = (): Record<string, string> => ({ DATABASE_URL: database.url });

beforeAll(async () => {
  database = await createIsolatedDatabase(services.databaseUrl, 'cli_reset');
  db = new pg.Client({ connectionString: database.url });
  await db.connect();
  await db.query('CREATE TABLE items (id int PRIMARY KEY, v text)');
  redis = new Redis(services.redisUrl);
  configFile = config('walpurge.yaml', services.redisUrl);
});

afterAll(async () => {
  await db?.end().catch(() => {});
  const keys = await redis?.keys(`${prefix}*`).catch(() => [] as string[]);
  if (keys && keys.length > 0) await redis.unlink(...keys);
  redis?.disconnect();
  await database?.drop();
  rmSync(dir, { recursive: true, force: true });
});

/** `walpurge run` in-process until `check` has passed; returns its exit code and stderr. */
async function runWhile(
  check: () => Promise<void>,
  file = configFile,
  url = database.url,
): Promise<{ code: number; err: string }> {
  const port = await freePort();
  const stop = new AbortController();
  const io = captureIo({ DATABASE_URL: url, LOG_LEVEL: 'silent' }, { signal: stop.signal });
  const exit = runCli(['run', '--config', file, '--http-port', String(port)], io);
  try {
    await waitUntilReady(port).catch((error: unknown) => {
      throw new Error(`${String(error)}\n${io.err()}`);
    });
    await check();
  } finally {
    stop.abort();
  }
  return { code: await exit, err: io.err() };
}

async function purged(id: number, client = db): Promise<void> {
  await redis.set(`${prefix}item:${id}`, 'stale');
  await client.query('INSERT INTO items VALUES ($1, $2)', [id, 'v']);
  await waitFor(`item:${id} purged`, async () => (await redis.exists(`${prefix}item:${id}`)) === 0);
}

describe('walpurge slot reset --purge-all', () => {
  it('is the only way past a dropped slot: run refuses, a failed purge changes nothing, a reset streams again', async () => {
    expect((await runWhile(() => purged(1))).code).toBe(0);

    const drop = captureIo({ ...env(), WALPURGE_CONFIG: configFile });
    expect(await runCli(['slot', 'drop', '--yes'], drop), drop.err()).toBe(0);
    // In the gap: the row changes while no slot exists, so nobody purges its cached entry.
    await redis.set(`${prefix}item:2`, 'stale');
    await db.query("INSERT INTO items VALUES (2, 'in the gap')");
    await redis.set(`${prefix}unrelated`, 'kept');

    const refused = captureIo({ ...env(), LOG_LEVEL: 'silent' });
    const refusedCode = await runCli(['run', '--config', configFile, '--http-port', '0'], refused);
    expect(refusedCode, refused.err()).toBe(1);
    expect(refused.err()).toContain(`replication slot "${slot}" is gone`);
    expect(refused.err()).toContain('walpurge slot reset --purge-all');
    expect((await db.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [slot])).rowCount).toBe(
      0,
    );

    // validate names the same refusal, located at database.slot.
    const validate = captureIo(env());
    expect(await runCli(['validate', '--config', configFile], validate)).toBe(1);
    expect(validate.err()).toMatch(/database\.slot: replication slot "[^"]+" is gone .* never purged/);

    const noFlag = captureIo(env());
    expect(await runCli(['slot', 'reset', '--config', configFile, '--yes'], noFlag)).toBe(2);
    expect(noFlag.err()).toContain('slot reset needs --purge-all');

    // The purge cannot reach Redis: the slot exists now, but the history still refuses it.
    const deadRedis = config('dead-redis.yaml', `redis://127.0.0.1:${await freePort()}`);
    const failed = captureIo(env());
    expect(await runCli(['slot', 'reset', '--purge-all', '--yes', '--config', deadRedis], failed)).toBe(1);
    expect(failed.err()).toContain(`created replication slot "${slot}"`);
    const stillRefused = captureIo({ ...env(), LOG_LEVEL: 'silent' });
    expect(await runCli(['run', '--config', configFile, '--http-port', '0'], stillRefused)).toBe(1);
    expect(stillRefused.err()).toContain('past the last position walpurge recorded');
    expect(await redis.get(`${prefix}item:2`)).toBe('stale');

    const reset = captureIo(env());
    expect(
      await runCli(['slot', 'reset', '--purge-all', '--yes', '--config', configFile], reset),
      reset.err(),
    ).toBe(0);
    expect(reset.out()).toMatch(
      new RegExp(
        `slot '${slot}' reset: kept at [0-9A-F]+/[0-9A-F]+ \\(the gap after [0-9A-F]+/[0-9A-F]+, recorded .*, is purged\\); listeners may start`,
      ),
    );
    expect(await redis.exists(`${prefix}item:2`)).toBe(0);
    expect(await redis.get(`${prefix}unrelated`)).toBe('kept');

    expect((await runWhile(() => purged(3))).code).toBe(0);
  });

  it('asks for the slot name without --yes, and refuses without a terminal', async () => {
    const noTerminal = captureIo(env());
    expect(await runCli(['slot', 'reset', '--purge-all', '--config', configFile], noTerminal)).toBe(2);
    expect(noTerminal.err()).toContain(
      'refusing to reset a slot and purge every cache entry without confirmation',
    );
    const wrong = captureIo(env(), { prompt: async () => 'nope' });
    expect(await runCli(['slot', 'reset', '--purge-all', '--config', configFile], wrong)).toBe(1);
    expect(wrong.err()).toContain('not confirmed; nothing done');
  });

  it('validate warns that database.failoverSlot needs PostgreSQL 17 (the shared server is older)', async () => {
    const file = config('failover.yaml', services.redisUrl, '  failoverSlot: true\n');
    const io = captureIo(env());
    expect(await runCli(['validate', '--config', file], io), io.err()).toBe(0);
    expect(io.err()).toMatch(
      /failover\.yaml:7:\d+: warning: database\.failoverSlot: failover slots need PostgreSQL 17 or newer \(this server is 1[0-6]\d{4}\)/,
    );
  });
});

describe('walpurge slot reset --purge-all on PostgreSQL 17 with database.failoverSlot', () => {
  let server: LocalPostgres;
  let client: pg.Client;

  beforeAll(async () => {
    server = await startLocalPostgres({ version: 17 });
    client = new pg.Client({ connectionString: server.url });
    await client.connect();
    await client.query('CREATE TABLE items (id int PRIMARY KEY, v text)');
  });

  afterAll(async () => {
    await client?.end();
    await server?.stop();
  });

  it('re-creates a slot that lacks failover, and the listener streams from the new one', async () => {
    const file = config('failover17.yaml', services.redisUrl, '  failoverSlot: true\n');
    // A slot from before failoverSlot was set (or made by hand): ordinary, adopted as is.
    await client.query("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", [slot]);
    const before = await client.query<{ failover: boolean }>(
      'SELECT failover FROM pg_replication_slots WHERE slot_name = $1',
      [slot],
    );
    expect(before.rows).toEqual([{ failover: false }]);

    const reset = captureIo({ DATABASE_URL: server.url });
    expect(
      await runCli(['slot', 'reset', '--purge-all', '--yes', '--config', file], reset),
      reset.err(),
    ).toBe(0);
    expect(reset.err()).toContain(`dropping replication slot "${slot}": created without failover`);
    expect(reset.out()).toMatch(
      new RegExp(`slot '${slot}' reset: created at \\S+ with failover; listeners may start`),
    );
    const after = await client.query<{ failover: boolean }>(
      'SELECT failover FROM pg_replication_slots WHERE slot_name = $1',
      [slot],
    );
    expect(after.rows).toEqual([{ failover: true }]);

    expect((await runWhile(() => purged(1, client), file, server.url)).code).toBe(0);
  });
});
