import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  createIsolatedDatabase,
  freePort,
  uniqueName,
  waitFor,
  type IsolatedDatabase,
} from '@walpurge/testing';
import { runCli } from './cli.js';
import { captureIo } from './testing/capture-io.js';
import { waitUntilReady } from './testing/walpurge-process.js';

/**
 * Embedded mode (transport: inline) dead-letters too: a purge the cache Redis refuses for good
 * (WRONGTYPE on a tag set) is stored in database.deadLetterTable before its LSN is acknowledged,
 * and `walpurge dlq list|redrive` select it by rule, table and cause, the same as with Kafka.
 */
const services = inject('services');
const name = uniqueName('dlq_inline');
const prefix = `${name}:`;
const deadLetterTable = `${name}_dead`;
const dir = mkdtempSync(join(tmpdir(), 'walpurge-dlq-inline-'));
const configFile = join(dir, 'walpurge.yaml');
let database: IsolatedDatabase;
let db: pg.Client;
let redis: Redis;
let stopRun: (() => Promise<number>) | undefined;

beforeAll(async () => {
  database = await createIsolatedDatabase(services.databaseUrl, 'dlq_inline');
  db = new pg.Client({ connectionString: database.url });
  await db.connect();
  await db.query(`CREATE TABLE items (id int PRIMARY KEY, sku text NOT NULL);
                  CREATE TABLE notes (id int PRIMARY KEY, body text NOT NULL)`);
  redis = new Redis(services.redisUrl);
  writeFileSync(
    configFile,
    `transport: inline
database:
  url: \${DATABASE_URL}
  slot: ${name}
  publication: ${name}
  statusIntervalMs: 500
  deadLetterTable: ${deadLetterTable}
redis:
  url: \${REDIS_URL}
  keyPrefix: '${prefix}'
invalidator:
  retryInitialMs: 20
  retryMaxMs: 200
log:
  level: fatal
rules:
  - table: public.items
    name: items-cache
    on: [insert, update, delete]
    redis:
      keys: ['item:{id}']
      tags: ['item-{id}']
  - table: public.notes
    name: notes-cache
    on: [insert, update, delete]
    redis:
      keys: ['note:{id}']
      tags: ['note-{id}']
`,
  );
});

afterAll(async () => {
  await stopRun?.().catch(() => {});
  await db?.end().catch(() => {});
  const keys = await redis?.keys(`${prefix}*`).catch(() => [] as string[]);
  if (keys && keys.length > 0) await redis.unlink(...keys);
  redis?.disconnect();
  await database?.drop();
  rmSync(dir, { recursive: true, force: true });
});

const env = (): Record<string, string> => ({
  DATABASE_URL: database.url,
  REDIS_URL: services.redisUrl,
  WALPURGE_CONFIG: configFile,
});

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const io = captureIo(env());
  const code = await runCli(argv, io);
  return { code, out: io.out(), err: io.err() };
}

interface Row {
  id: string;
  cause: string;
  target: string;
  error_code: string;
  error_message: string;
  table_name: string;
  lsn: string;
  rules: string[];
  event: { source: { lsn: string }; after: { id: number } };
}

async function rows(): Promise<Row[]> {
  const result = await db.query<Row>(
    `SELECT id::text, cause, target, error_code, error_message, table_name, lsn::text, rules, event
       FROM ${deadLetterTable} ORDER BY id`,
  );
  return result.rows;
}

describe('dead letters in embedded mode (transport: inline)', () => {
  it('stores a purge refused for good, acknowledges past it, and redrives it by rule once fixed', async () => {
    const port = await freePort();
    const controller = new AbortController();
    const io = captureIo(env(), { signal: controller.signal });
    const exit = runCli(['run', '--role', 'all', '--http-port', String(port)], io);
    stopRun = async () => {
      controller.abort();
      return exit;
    };
    await Promise.race([
      waitUntilReady(port),
      exit.then((code) => {
        throw new Error(`walpurge run exited with ${code}: ${io.err()}`);
      }),
    ]);

    // Tag sets another writer turned into strings: Redis refuses SSCAN on them (WRONGTYPE), for good.
    await redis.mset(`${prefix}tag:item-1`, 'not a set', `${prefix}tag:note-1`, 'not a set');
    await redis.mset(`${prefix}item:2`, 'stale');
    await db.query("INSERT INTO items VALUES (1, 'a')");
    await db.query("INSERT INTO notes VALUES (1, 'n')");
    await db.query("INSERT INTO items VALUES (2, 'b')");

    // The event after the refused ones is purged: replication did not stall on them.
    await waitFor('item 2 purged', async () => (await redis.exists(`${prefix}item:2`)) === 0, {
      timeoutMs: 20_000,
    });
    const stored = await waitFor(
      'both refused events in the dead-letter table',
      async () => {
        const found = await rows().catch(() => []);
        return found.length === 2 ? found : undefined;
      },
      { timeoutMs: 20_000 },
    );
    const [item, note] = stored as [Row, Row];
    expect(item).toMatchObject({
      cause: 'purge-rejected',
      target: 'redis',
      table_name: 'public.items',
      rules: ['items-cache'],
      error_code: 'WP_PURGE_FAILED',
    });
    expect(item.error_message).toMatch(/holds another type than a Redis set/);
    expect(item.lsn).toBe(item.event.source.lsn);
    expect(item.event.after.id).toBe(1);
    expect(note).toMatchObject({ table_name: 'public.notes', rules: ['notes-cache'], target: 'redis' });

    // Stored before acknowledged: the slot moves past the refused events.
    await waitFor(
      'the slot to acknowledge past the refused events',
      async () => {
        const { rows: slot } = await db.query<{ past: boolean }>(
          'SELECT confirmed_flush_lsn >= $2::pg_lsn AS past FROM pg_replication_slots WHERE slot_name = $1',
          [name, note.lsn],
        );
        return slot[0]?.past === true;
      },
      { timeoutMs: 20_000 },
    );

    const status = await cli('status');
    expect(status.out).toMatch(new RegExp(`^dead-letter events\\s+2 in ${deadLetterTable}$`, 'm'));
    expect(JSON.parse((await cli('status', '--json')).out)).toMatchObject({
      deadLetterTable: { table: deadLetterTable, deadLetters: 2 },
    });

    const listed = await cli('dlq', 'list', '--rule', 'items-cache', '--json');
    expect(listed.code, listed.err).toBe(0);
    const entries = JSON.parse(listed.out) as Array<{ id: string; table: string; rules: string[] }>;
    expect(entries).toEqual([
      expect.objectContaining({ id: item.id, table: 'public.items', rules: ['items-cache'] }),
    ]);
    const text = await cli('dlq', 'list', '--table', 'notes');
    expect(text.out).toMatch(
      new RegExp(
        `^${note.id}  \\S+  purge-rejected  table public.notes  target redis  rules notes-cache  lsn ${note.lsn}\\n {4}WP_PURGE_FAILED: .*holds another type`,
      ),
    );
    expect((await cli('dlq', 'list', '--since', '1h', '--json')).out).toContain(`"id": "${note.id}"`);
    expect(await cli('dlq', 'list', '--until', '1h')).toMatchObject({
      code: 0,
      out: `no selected dead-letter events in ${deadLetterTable}\n`,
    });

    const dry = await cli('dlq', 'redrive', '--rule', 'items-cache', '--dry-run');
    expect(dry.out).toMatch(/dry run: would redrive 1 dead-letter event from /);
    expect(await rows()).toHaveLength(2);

    // Fix the cause, let the entry be cached again, and redrive only that rule's events.
    await redis.del(`${prefix}tag:item-1`);
    await redis.set(`${prefix}item:1`, 'stale');
    const redriven = await cli('dlq', 'redrive', '--rule', 'items-cache');
    expect(redriven, redriven.err).toMatchObject({
      code: 0,
      out: `redrove 1 dead-letter event from ${deadLetterTable}\n`,
    });
    expect(await redis.exists(`${prefix}item:1`)).toBe(0);
    expect((await rows()).map((row) => row.id)).toEqual([note.id]);

    // Not fixed: refused again, stored again (a new row), reported, and the exit code says so.
    const again = await cli('dlq', 'redrive', '--table', 'public.notes');
    expect(again.code).toBe(1);
    expect(again.out).toMatch(
      /^redrove 0 dead-letter events from .*\n1 event refused again, stored again in /,
    );
    const left = await rows();
    expect(left).toHaveLength(1);
    expect(left[0]).toMatchObject({ table_name: 'public.notes', rules: ['notes-cache'] });
    expect(Number(left[0]?.id)).toBeGreaterThan(Number(note.id));
  });

  it('validate refuses a dead-letter table the daemon could not write to', async () => {
    expect(await cli('validate')).toMatchObject({ code: 0 });
    await db.query(`CREATE TABLE ${name}_bad (id int)`);
    const badConfig = join(dir, 'bad.yaml');
    writeFileSync(
      badConfig,
      readFileSync(configFile, 'utf8').replace(
        `deadLetterTable: ${deadLetterTable}`,
        `deadLetterTable: ${name}_bad`,
      ),
    );
    const bad = await cli('validate', '--config', badConfig);
    expect(bad.code).toBe(1);
    expect(bad.out + bad.err).toContain(
      `database.deadLetterTable: the dead-letter table ${name}_bad lacks the column(s) dead_lettered_at, cause`,
    );
  });
});
