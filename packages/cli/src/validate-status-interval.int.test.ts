import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createIsolatedDatabase, withDatabase, type IsolatedDatabase } from '@walpurge/testing';
import { runCli } from './cli.js';
import { captureIo } from './testing/capture-io.js';

const dir = mkdtempSync(join(tmpdir(), 'walpurge-validate-interval-'));
let database: IsolatedDatabase;

beforeAll(async () => {
  database = await createIsolatedDatabase(inject('services').databaseUrl, 'cli_interval');
  // Per database (a per-connection setting since PostgreSQL 12): nothing else on the server sees it.
  const admin = new pg.Client({ connectionString: withDatabase(database.url, 'postgres') });
  await admin.connect();
  try {
    await admin.query(`ALTER DATABASE ${database.name} SET wal_sender_timeout = '5s'`);
  } finally {
    await admin.end();
  }
  const client = new pg.Client({ connectionString: database.url });
  await client.connect();
  try {
    await client.query('CREATE TABLE users (id int PRIMARY KEY)');
  } finally {
    await client.end();
  }
});
afterAll(async () => {
  await database?.drop();
  rmSync(dir, { recursive: true, force: true });
});

describe('walpurge validate: statusIntervalMs against wal_sender_timeout', () => {
  it('reports an interval the server would not wait for, located, with the fix', async () => {
    const file = join(dir, 'interval.yaml');
    writeFileSync(
      file,
      'database:\n  url: ${DATABASE_URL}\n  slot: walpurge_interval\n  statusIntervalMs: 5000\nrules:\n  - table: users\n    redis: { keys: ["user:{id}"] }\n',
    );
    const io = captureIo({ DATABASE_URL: database.url });
    expect(await runCli(['validate', '--config', file], io)).toBe(1);
    expect(io.err()).toBe(
      `${file}: 1 problem\n` +
        `  ${file}:4:21: database.statusIntervalMs: database.statusIntervalMs (5000 ms) is not below the server's wal_sender_timeout (5000 ms): PostgreSQL would end the replication connection whenever the listener pauses reading (fix: set database.statusIntervalMs to at most 1666 (a third of wal_sender_timeout), or raise wal_sender_timeout on the server (ALTER SYSTEM SET wal_sender_timeout = '60s'; SELECT pg_reload_conf()))\n`,
    );
  });

  it('passes the default interval on the same server', async () => {
    const file = join(dir, 'fine.yaml');
    writeFileSync(
      file,
      'database:\n  url: ${DATABASE_URL}\n  slot: walpurge_interval\n  statusIntervalMs: 1000\nrules:\n  - table: users\n    redis: { keys: ["user:{id}"] }\n',
    );
    const io = captureIo({ DATABASE_URL: database.url });
    expect(await runCli(['validate', '--config', file], io)).toBe(0);
  });
});
