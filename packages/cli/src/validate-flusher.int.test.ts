import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  createIsolatedDatabase,
  startLocalRedis,
  type IsolatedDatabase,
  type LocalRedis,
} from '@walpurge/testing';
import { runCli } from './cli.js';
import { captureIo } from './testing/capture-io.js';

// `validate` must refuse a flusher section the flusher would refuse at start-up (or could not
// honour): tables without a primary key or version column, a queue Redis that loses writes.

const dir = mkdtempSync(join(tmpdir(), 'walpurge-validate-flusher-'));
let database: IsolatedDatabase;
let safeQueue: LocalRedis;
let unsafeQueue: LocalRedis;

beforeAll(async () => {
  database = await createIsolatedDatabase(inject('services').databaseUrl, 'cli_validate_flusher');
  const client = new pg.Client({ connectionString: database.url });
  await client.connect();
  await client.query(`CREATE TABLE accounts (id int PRIMARY KEY, _walpurge_version bigint NOT NULL DEFAULT 0);
                      CREATE TABLE notes (id int PRIMARY KEY, body text)`);
  await client.end();
  [safeQueue, unsafeQueue] = await Promise.all([startLocalRedis({ persistent: true }), startLocalRedis()]);
});
afterAll(async () => {
  await Promise.all([safeQueue?.stop(), unsafeQueue?.stop()]);
  await database?.drop();
  rmSync(dir, { recursive: true, force: true });
});

async function validate(name: string, tables: string, queueUrl: string) {
  const file = join(dir, name);
  writeFileSync(
    file,
    `database:\n  url: \${DATABASE_URL}\n  slot: walpurge_vf\n  publication: walpurge_vf\n` +
      `redis:\n  url: \${REDIS_URL}\n` +
      `flusher:\n  queueRedisUrl: ${queueUrl}\n  tables: [${tables}]\nrules: []\n`,
  );
  const io = captureIo({ DATABASE_URL: database.url, REDIS_URL: inject('services').redisUrl });
  const code = await runCli(['validate', '--config', file], io);
  return { file, code, out: io.out(), err: io.err() };
}

describe('walpurge validate: the flusher section', () => {
  it('passes write-behind tables with a primary key and a version column, and a safe queue Redis', async () => {
    const result = await validate('ok.yaml', 'accounts', safeQueue.url);
    expect(result.err).toBe('');
    expect(result.code).toBe(0);
  });

  it('refuses a table without the version column and a queue Redis that loses writes', async () => {
    const result = await validate('bad.yaml', 'accounts, notes', unsafeQueue.url);
    expect(result.code).toBe(1);
    expect(result.err).toContain(
      'flusher.tables[1]: write-behind table public.notes has no version column _walpurge_version',
    );
    expect(result.err).toContain('flusher.queueRedisUrl: queue Redis: appendonly is off');
    expect(result.err).not.toContain('flusher.tables[0]');
  });
});
