import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { parseConfigText } from '@walpurge/config';
import { createLogger } from '@walpurge/core';
import { namespaceVersion } from '@walpurge/rules';
import {
  createIsolatedDatabase,
  deleteRedisKeys,
  uniqueName,
  waitFor,
  type IsolatedDatabase,
} from '@walpurge/testing';
import { RecordingServer } from '../../../services/invalidator/test/recording-server.js';
import { runCli } from './cli.js';
import { purgeTable } from './purge/purge-table.js';
import { captureIo } from './testing/capture-io.js';
import { spawnWalpurge } from './testing/walpurge-process.js';

/**
 * `walpurge purge` in-process against real PostgreSQL and Redis, with a recording Cloudflare API.
 * The users rule purges on delete only and only when `name` changed: a re-purge applies it anyway.
 */
const services = inject('services');
const prefix = `${uniqueName('purge_cli')}:`;
const dir = mkdtempSync(join(tmpdir(), 'walpurge-purge-'));
const configFile = join(dir, 'walpurge.yaml');
const checkpointFile = join(dir, 'users.checkpoint.json');
const cloudflare = new RecordingServer();
let database: IsolatedDatabase;
let db: pg.Client;
let cache: Redis;
let configText: string;

const USERS = 7;
const email = (id: number): string => `u${id}@x.test`;

beforeAll(async () => {
  database = await createIsolatedDatabase(services.databaseUrl, 'purge_cli');
  db = new pg.Client({ connectionString: database.url });
  await db.connect();
  await db.query(`CREATE TABLE users (id int PRIMARY KEY, email text NOT NULL, name text,
                                      created timestamptz NOT NULL DEFAULT '2026-01-02 03:04:05+00');
                  CREATE TABLE events (kind text NOT NULL, n int NOT NULL);
                  CREATE TABLE logs (day date NOT NULL, n int NOT NULL) PARTITION BY RANGE (day);
                  CREATE TABLE logs_jan PARTITION OF logs FOR VALUES FROM ('2026-01-01') TO ('2026-02-01');
                  CREATE TABLE logs_feb PARTITION OF logs FOR VALUES FROM ('2026-02-01') TO ('2026-03-01');
                  INSERT INTO logs SELECT d, n FROM unnest(ARRAY['2026-01-05', '2026-02-05']::date[]) d,
                                                    generate_series(1, 3) n`);
  for (let id = 1; id <= USERS; id += 1)
    await db.query('INSERT INTO users (id, email, name) VALUES ($1, $2, $3)', [id, email(id), `user ${id}`]);
  for (let n = 1; n <= 5; n += 1) await db.query("INSERT INTO events VALUES ('click', $1)", [n]);
  cache = new Redis(services.redisUrl);
  const cloudflareUrl = await cloudflare.start();
  configText = `transport: inline
database:
  url: ${database.url}
  slot: ${prefix.slice(0, -1)}
  publication: ${prefix.slice(0, -1)}
redis:
  url: ${services.redisUrl}
  keyPrefix: '${prefix}'
cdn:
  cloudflare: { zoneId: z1, apiToken: t, baseUrl: '${cloudflareUrl}' }
rules:
  - table: users
    on: [delete]
    when: { changed: [name] }
    redis:
      keys: ['user:{id}', 'old_email:{old.email}', 'new_email:{new.email}', 'user_since:{id}:{created}']
      tags: ['user-{id}']
    cdn:
      urls: ['https://x.test/users/{id}']
  - table: events
    redis:
      keys: ['event:{kind}:{n}', '{kind}']
  - table: logs
    redis:
      keys: ['log:{day}:{n}']
`;
  writeFileSync(configFile, configText);
});

afterAll(async () => {
  await deleteRedisKeys(cache, prefix);
  cache?.disconnect();
  await cloudflare.stop();
  await db?.end().catch(() => {});
  await database?.drop();
  rmSync(dir, { recursive: true, force: true });
});

/** Every key a row of users derives, as the application would have cached them. */
function userKeys(id: number): string[] {
  return [
    `user:${id}`,
    `old_email:${email(id)}`,
    `new_email:${email(id)}`,
    // As the listener decodes a timestamptz: ISO 8601 in UTC.
    `user_since:${id}:2026-01-02T03:04:05Z`,
    `tagged:${id}`,
  ];
}

async function seedUser(id: number): Promise<void> {
  for (const key of userKeys(id)) await cache.set(prefix + key, 'cached');
  await cache.sadd(`${prefix}tag:user-${id}`, `tagged:${id}`);
}

async function cachedUsers(): Promise<number[]> {
  const ids: number[] = [];
  for (let id = 1; id <= USERS + 1; id += 1) {
    const present = await cache.exists(...userKeys(id).map((key) => prefix + key));
    if (present === 5) ids.push(id);
    else if (present !== 0) throw new Error(`user ${id}: ${present} of 5 keys left, expected all or none`);
  }
  return ids;
}

beforeEach(async () => {
  await deleteRedisKeys(cache, prefix);
  // User 8 has no row: its entries belong to no row and must survive a --table purge.
  for (let id = 1; id <= USERS + 1; id += 1) await seedUser(id);
  await cache.set(`${prefix}unrelated`, 'cached');
  cloudflare.requests.length = 0;
  cloudflare.delayMs = 0;
  rmSync(checkpointFile, { force: true });
});

async function cli(argv: string[], extra: Parameters<typeof captureIo>[1] = {}) {
  const io = captureIo({ WALPURGE_CONFIG: configFile }, extra);
  const code = await runCli(['purge', ...argv], io);
  return { code, out: io.out(), err: io.err() };
}

const purgedUrls = (): string[] =>
  cloudflare.requests
    .flatMap((request) => (JSON.parse(request.body) as { files?: string[] }).files ?? [])
    .sort();

describe('walpurge purge --table', () => {
  it("purges exactly the rows' entries, in several batches, whatever the rule's on/when", async () => {
    const result = await cli([
      '--table',
      'users',
      '--batch-size',
      '3',
      '--yes',
      '--checkpoint',
      checkpointFile,
    ]);
    expect(result.code, result.err).toBe(0);
    expect(await cachedUsers()).toEqual([8]);
    expect(await cache.exists(`${prefix}unrelated`)).toBe(1);
    expect(purgedUrls()).toEqual([1, 2, 3, 4, 5, 6, 7].map((id) => `https://x.test/users/${id}`).sort());
    expect(result.out).toContain(
      'purged the entries of 7 rows of public.users in 3 batch(es); targets: redis, cloudflare',
    );
    expect(result.out).toMatch(
      /redis keys\s+28 {2}e\.g\. user:1, old_email:u1@x\.test, new_email:u1@x\.test/,
    );
    expect(result.err).toContain('purge public.users: 7 row(s) by primary key');
    expect(existsSync(checkpointFile)).toBe(false);
  });

  it("gives the rows' namespaces a fresh version, whatever LSN the stored one holds", async () => {
    const withNamespaces = join(dir, 'namespaces.yaml');
    writeFileSync(
      withNamespaces,
      `${configText}  - table: events\n    redis:\n      namespaces: ['events:{kind}', 'all-events']\n`,
    );
    // A version ahead of anything this server's WAL holds (e.g. from before a restore).
    const ahead = `rOld:${'f'.repeat(16)}`;
    await cache.set(`${prefix}ns:all-events`, ahead);
    const io = captureIo({ WALPURGE_CONFIG: withNamespaces });
    const code = await runCli(['purge', '--table', 'events', '--yes'], io);
    expect(code, io.err()).toBe(0);
    for (const namespace of ['all-events', 'events:click']) {
      const version = await cache.get(`${prefix}ns:${namespace}`);
      expect(version, namespace).toMatch(/^r[\w-]+\.\d+:0{16}$/);
      expect(version).not.toBe(ahead);
    }
  });

  it('--all bumps the namespaces too, and prints them', async () => {
    const withNamespaces = join(dir, 'namespaces-all.yaml');
    writeFileSync(
      withNamespaces,
      `${configText}  - table: events\n    redis:\n      namespaces: ['events:{kind}', 'all-events']\n`,
    );
    const old = `rOld:${namespaceVersion('0/1')}`;
    await cache.set(`${prefix}ns:events:click`, old);
    await cache.set(`${prefix}ns:all-events`, old);
    const io = captureIo({ WALPURGE_CONFIG: withNamespaces });
    // --allow-partial: the events rule's '{kind}' key starts with a field, so it is NOT PURGED.
    const code = await runCli(['purge', '--all', '--yes', '--allow-partial'], io);
    expect(code, io.err()).toBe(0);
    for (const namespace of ['all-events', 'events:click']) {
      const version = await cache.get(`${prefix}ns:${namespace}`);
      expect(version, namespace).toMatch(/^r[\w-]+\.\d+:0{16}$/);
      expect(version).not.toBe(old);
    }
    expect(io.out()).toMatch(/redis namespaces\s+1: all-events/);
    expect(io.out()).toMatch(/redis namespaces\s+events:\*: 1 version key\(s\) found, e\.g\. events:click/);
    expect(io.out()).toContain('2 namespace version(s) given a fresh value');
    expect(io.out()).not.toContain('namespaces[');
  });

  it('--where filters the rows', async () => {
    const result = await cli([
      '--table',
      'public.users',
      '--where',
      'id <= 2 OR email = $$u5@x.test$$',
      '--yes',
    ]);
    expect(result.code, result.err).toBe(0);
    expect(await cachedUsers()).toEqual([3, 4, 6, 7, 8]);
  });

  it('pages a table without a primary key by ctid', async () => {
    for (let n = 1; n <= 6; n += 1) await cache.set(`${prefix}event:click:${n}`, 'cached');
    const result = await cli(['--table', 'events', '--batch-size', '2', '--yes']);
    expect(result.code, result.err).toBe(0);
    expect(result.err).toContain('5 row(s) by ctid');
    expect(result.out).toContain('5 rows of public.events in 3 batch(es)');
    const left = await cache.keys(`${prefix}event:*`);
    expect(left).toEqual([`${prefix}event:click:6`]);
  });

  it('pages a partitioned table without a primary key by (tableoid, ctid), across partitions', async () => {
    const logKeys = ['2026-01-05', '2026-02-05'].flatMap((day) =>
      [1, 2, 3].map((n) => `${prefix}log:${day}:${n}`),
    );
    for (const key of logKeys) await cache.set(key, 'cached');
    const result = await cli(['--table', 'logs', '--batch-size', '2', '--yes']);
    expect(result.code, result.err).toBe(0);
    expect(result.out).toContain('6 rows of public.logs in 3 batch(es)');
    expect(await cache.exists(...logKeys)).toBe(0);
  });

  it('refuses to resume a ctid checkpoint after the table was rewritten', async () => {
    const stop = new AbortController();
    const { config } = parseConfigText(configText, configFile, { env: {} });
    const first = await purgeTable({
      config,
      logger: createLogger({ level: 'silent', pretty: false }),
      table: 'events',
      batchSize: 2,
      checkpointFile,
      stop: stop.signal,
      onBatch: () => stop.abort(),
    });
    expect(first).toMatchObject({ interrupted: true, rows: 2, keyKind: 'ctid' });
    await db.query('VACUUM FULL events');
    const result = await cli(['--table', 'events', '--resume', '--checkpoint', checkpointFile, '--yes']);
    expect(result.code).toBe(2);
    expect(result.err).toContain(
      'public.events was rewritten since the checkpoint (VACUUM FULL, CLUSTER, …)',
    );
  });

  it('a dry run plans every batch and touches nothing', async () => {
    const result = await cli(['--table', 'users', '--batch-size', '2', '--dry-run']);
    expect(result.code, result.err).toBe(0);
    expect(await cachedUsers()).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(cloudflare.requests).toHaveLength(0);
    expect(result.out).toContain(
      'dry run, nothing purged: would purge the entries of 7 rows of public.users in 4 batch(es)',
    );
    expect(result.out).toMatch(/cdn urls\s+7 {2}e\.g\. https:\/\/x\.test\/users\/1,/);
    expect(result.out).toMatch(/redis tags\s+7 {2}e\.g\. user-1, user-2/);
    expect(existsSync(checkpointFile)).toBe(false);
  });

  it('resumes after an interruption without purging the finished batches again', async () => {
    // Stop (as Ctrl-C does) once the second batch has been purged.
    const stop = new AbortController();
    const { config } = parseConfigText(configText, configFile, { env: {} });
    const first = await purgeTable({
      config,
      logger: createLogger({ level: 'silent', pretty: false }),
      table: 'users',
      batchSize: 2,
      checkpointFile,
      stop: stop.signal,
      onBatch: (progress) => {
        if (progress.batches === 2) stop.abort();
      },
    });
    expect(first).toMatchObject({ interrupted: true, rows: 4, batches: 2, lastKey: ['4'] });
    expect(await cachedUsers()).toEqual([5, 6, 7, 8]);
    expect(JSON.parse(readFileSync(checkpointFile, 'utf8'))).toMatchObject({ lastKey: ['4'], rows: 4 });

    // Cached again since: a resume that started over would purge them.
    for (const id of [1, 2, 3, 4]) await seedUser(id);
    const result = await cli([
      '--table',
      'users',
      '--batch-size',
      '2',
      '--resume',
      '--checkpoint',
      checkpointFile,
      '--yes',
    ]);
    expect(result.code, result.err).toBe(0);
    expect(result.err).toContain('resuming after 4 rows');
    expect(result.out).toContain('3 rows (after 4 done before)');
    expect(await cachedUsers()).toEqual([1, 2, 3, 4, 8]);
    expect(existsSync(checkpointFile)).toBe(false);
  });

  it('stops after the batch in flight when interrupted and prints how to resume', async () => {
    cloudflare.delayMs = 300;
    const controller = new AbortController();
    const running = cli(['--table', 'users', '--batch-size', '3', '--yes', '--checkpoint', checkpointFile], {
      signal: controller.signal,
    });
    await waitFor('the first CDN purge', async () => cloudflare.requests.length > 0);
    controller.abort();
    const result = await running;
    expect(result.code).toBe(1);
    expect(result.err).toContain('interrupted after 3 row(s)');
    expect(result.err).toContain(
      `resume with: walpurge purge --config ${configFile} --table public.users --checkpoint ${checkpointFile} --resume --yes`,
    );
    expect(await cachedUsers()).toEqual([4, 5, 6, 7, 8]);
    const resumed = await cli([
      '--table',
      'public.users',
      '--checkpoint',
      checkpointFile,
      '--resume',
      '--yes',
    ]);
    expect(resumed.code, resumed.err).toBe(0);
    expect(await cachedUsers()).toEqual([8]);
  });

  it('the real process stops on SIGINT after the batch in flight, keeping the checkpoint', async () => {
    cloudflare.delayMs = 500;
    const walpurge = spawnWalpurge(
      ['purge', '--table', 'users', '--batch-size', '1', '--yes', '--checkpoint', checkpointFile],
      { WALPURGE_CONFIG: configFile },
    );
    await waitFor('the first CDN purge', async () => cloudflare.requests.length > 0, { timeoutMs: 30_000 });
    walpurge.child.kill('SIGINT');
    expect(await walpurge.exited).toBe(1);
    expect(walpurge.output()).toContain('stopping after the batch in flight');
    expect(walpurge.output()).toContain('interrupted after 1 row(s)');
    expect(walpurge.output()).toContain('--resume --yes');
    expect(JSON.parse(readFileSync(checkpointFile, 'utf8'))).toMatchObject({ lastKey: ['1'], rows: 1 });
    expect(await cachedUsers()).toEqual([2, 3, 4, 5, 6, 7, 8]);
  });

  it('refuses --resume with a checkpoint of another --where', async () => {
    writeFileSync(
      checkpointFile,
      JSON.stringify({
        version: 1,
        table: 'public.users',
        where: 'id > 1',
        keyKind: 'primary key ("id")',
        lastKey: ['2'],
        fileNode: null,
        rows: 2,
        updatedAt: new Date().toISOString(),
      }),
    );
    const result = await cli(['--table', 'users', '--resume', '--checkpoint', checkpointFile, '--yes']);
    expect(result.code).toBe(2);
    expect(result.err).toContain(
      `was written by '--table public.users --where "id > 1"', not '--table public.users'`,
    );
    expect(await cachedUsers()).toHaveLength(8);
  });
});

describe('walpurge purge: refusals and errors', () => {
  it('refuses without --yes when there is no terminal to ask on (exit 2), touching nothing', async () => {
    for (const argv of [['--table', 'users'], ['--all']]) {
      const result = await cli(argv);
      expect(result.code).toBe(2);
      expect(result.err).toContain(
        'refusing to purge without confirmation: pass --yes (no terminal to ask on)',
      );
    }
    expect(await cachedUsers()).toHaveLength(8);
  });

  it('asks on a terminal, shows a progress bar, and does nothing unless confirmed', async () => {
    const no = await cli(['--table', 'users'], { prompt: async () => 'n' });
    expect(no.code).toBe(1);
    expect(no.err).toContain('not confirmed; nothing purged');
    expect(await cachedUsers()).toHaveLength(8);

    const questions: string[] = [];
    const io = captureIo(
      { WALPURGE_CONFIG: configFile },
      { prompt: async (q) => (questions.push(q), 'yes') },
    );
    io.stderr.isTTY = true;
    const code = await runCli(['purge', '--table', 'users', '--batch-size', '2'], io);
    expect(code, io.err()).toBe(0);
    expect(questions).toEqual([
      'Purge every cache entry the rules derive from the rows of public.users? [y/N] ',
    ]);
    expect(io.err()).toMatch(/\rpurge public\.users \[#+\] 100% {2}7\/7 rows {2}[\d,]+ rows\/s/);
    expect(await cachedUsers()).toEqual([8]);
  });

  it('unknown table, bad --where, and option mistakes are usage errors', async () => {
    const unknown = await cli(['--table', 'orders', '--yes']);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toContain(
      'no rule watches table public.orders (rules watch: public.users, public.events, public.logs)',
    );

    const bad = await cli(['--table', 'users', '--where', 'id = 1 AND nmae = 2', '--yes']);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('--where is not valid SQL for this table: column "nmae" does not exist');
    expect(bad.err).toContain('  id = 1 AND nmae = 2\n             ^');

    const twoStatements = await cli([
      '--table',
      'users',
      '--where',
      'true); DELETE FROM users; SELECT (1',
      '--yes',
    ]);
    expect(twoStatements.code).toBe(2);
    expect((await db.query('SELECT count(*)::int AS n FROM users')).rows[0]).toEqual({ n: USERS });

    expect((await cli(['--yes'])).err).toContain('pass --table T (re-purge its rows) or --all');
    expect((await cli(['--all', '--table', 'users'])).code).toBe(2);
    expect((await cli(['--table', 'users', '--batch-size', '0'])).err).toContain('--batch-size must be');
    expect(await cachedUsers()).toHaveLength(8);
  });

  it('reports the entries no configured target can purge, and exits 1 unless --allow-partial', async () => {
    const noCdn = join(dir, 'no-cdn.yaml');
    writeFileSync(noCdn, configText.replace(/^cdn:\n.*\n/m, ''));
    const io = captureIo({ WALPURGE_CONFIG: noCdn });
    expect(await runCli(['purge', '--table', 'users', '--yes'], io)).toBe(1);
    expect(io.out()).toContain(
      'NOT PURGED on cdn: rules[0].cdn.urls[0] "https://x.test/users/{id}" (rule rules[0] public.users): no cdn driver is configured',
    );
    expect(io.err()).toContain('pass --allow-partial to accept this');
    expect(await cachedUsers()).toEqual([8]);
    const accepted = captureIo({ WALPURGE_CONFIG: noCdn });
    expect(await runCli(['purge', '--table', 'users', '--yes', '--allow-partial'], accepted)).toBe(0);
  });

  it('says which service it cannot reach', async () => {
    const unreachable = join(dir, 'unreachable.yaml');
    writeFileSync(unreachable, configText.replace(services.redisUrl, 'redis://127.0.0.1:1'));
    const io = captureIo({ WALPURGE_CONFIG: unreachable });
    expect(await runCli(['purge', '--table', 'users', '--yes'], io)).toBe(1);
    expect(io.err()).toContain('cannot reach the cache Redis at 127.0.0.1:1: connection refused');

    const ghost = join(dir, 'ghost.yaml');
    writeFileSync(ghost, `${configText}  - table: ghosts\n    redis:\n      keys: ['ghost:{id}']\n`);
    const ghostIo = captureIo({ WALPURGE_CONFIG: ghost });
    expect(await runCli(['purge', '--table', 'ghosts', '--yes'], ghostIo)).toBe(1);
    expect(ghostIo.err()).toContain('table public.ghosts does not exist in the database');

    const noDb = join(dir, 'no-db.yaml');
    writeFileSync(noDb, configText.replace(database.url, 'postgres://postgres@127.0.0.1:1/x'));
    const dbIo = captureIo({ WALPURGE_CONFIG: noDb });
    expect(await runCli(['purge', '--table', 'users', '--yes'], dbIo)).toBe(1);
    expect(dbIo.err()).toContain('cannot reach PostgreSQL at 127.0.0.1:1/x: connection refused');
    expect(await cachedUsers()).toHaveLength(8);
  });
});

describe('walpurge purge --all', () => {
  it('purges the key space, reports what it cannot purge, and exits 1 unless --allow-partial', async () => {
    await cache.set(`${prefix}event:other:9`, 'cached');
    const result = await cli(['--all', '--yes']);
    expect(result.code).toBe(1);
    expect(await cachedUsers()).toEqual([]);
    expect(await cache.exists(`${prefix}event:other:9`)).toBe(0);
    expect(await cache.exists(`${prefix}unrelated`)).toBe(1);
    expect(result.out).toContain('NOT PURGED: 1 template(s)');
    expect(result.out).toContain('rules[1].redis.keys[1] "{kind}" (rule rules[1] public.events)');
    expect(result.err).toContain('pass --allow-partial to accept this');
    const prefixes = cloudflare.requests.map((request) => JSON.parse(request.body) as unknown);
    expect(prefixes).toEqual([{ prefixes: ['x.test/users/'] }]);

    const accepted = await cli(['--all', '--yes', '--allow-partial']);
    expect(accepted.code).toBe(0);
    expect(accepted.err).toContain('WARNING: 1 template(s) could not be purged wholesale');
  });

  it('a dry run lists and counts, touching nothing', async () => {
    const result = await cli(['--all', '--dry-run']);
    expect(result.code).toBe(1);
    expect(result.out).toContain('purge --all (dry run, nothing touched)');
    expect(result.out).toMatch(/redis pattern\s+user:\* \(8 key\(s\) now/);
    expect(result.out).toMatch(/redis tag sets\s+user-\*: 8 found/);
    expect(await cachedUsers()).toHaveLength(8);
    expect(cloudflare.requests).toHaveLength(0);
  });
});
