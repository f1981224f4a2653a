/**
 * database.failoverSlot on the PostgreSQL versions that matter: 17 creates the slot with failover
 * (so standbys with sync_replication_slots carry it); 15 cannot, and the listener says so.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { WalpurgeConfig } from '@walpurge/config';
import { createLogger } from '@walpurge/core';
import {
  createIsolatedDatabase,
  startLocalPostgres,
  uniqueName,
  type IsolatedDatabase,
  type LocalPostgres,
} from '@walpurge/testing';
import { startListener } from './test-support/harness.js';
import { RecordingSink } from './testing/recording-sink.js';

function failoverConfig(url: string, slot: string): WalpurgeConfig {
  return WalpurgeConfig.parse({
    database: { url, slot, publication: slot, tables: ['items'], heartbeatIntervalMs: 0, failoverSlot: true },
    rules: [],
  });
}

async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

describe('database.failoverSlot', () => {
  let pg17: LocalPostgres;
  let db15: IsolatedDatabase;

  beforeAll(async () => {
    [pg17, db15] = await Promise.all([
      startLocalPostgres({ version: 17 }),
      createIsolatedDatabase(inject('services').databaseUrl, 'failover'),
    ]);
    for (const url of [pg17.url, db15.url])
      await withClient(url, (client) => client.query('CREATE TABLE items (id int PRIMARY KEY)'));
  });

  afterAll(async () => {
    await db15?.drop();
    await pg17?.stop();
  });

  it('creates the slot with failover on PostgreSQL 17, and streams from it', async () => {
    const slot = uniqueName('failover');
    const sink = new RecordingSink();
    const listener = await startListener({ config: failoverConfig(pg17.url, slot), sink });
    try {
      await withClient(pg17.url, async (client) => {
        const version = await client.query<{ v: string }>(
          "SELECT current_setting('server_version_num') AS v",
        );
        expect(Number(version.rows[0]?.v)).toBeGreaterThanOrEqual(170000);
        const { rows } = await client.query<{ failover: boolean }>(
          'SELECT failover FROM pg_replication_slots WHERE slot_name = $1',
          [slot],
        );
        expect(rows).toEqual([{ failover: true }]);
        await client.query('INSERT INTO items VALUES (1)');
      });
      await sink.waitForEvents(1);
    } finally {
      await listener.stop();
    }
  });

  it('warns on PostgreSQL 15 and creates an ordinary slot', async () => {
    const slot = uniqueName('nofailover');
    const lines: string[] = [];
    const logger = createLogger({
      level: 'warn',
      pretty: false,
      destination: { write: (l) => lines.push(l) },
    });
    const listener = await startListener({
      config: failoverConfig(db15.url, slot),
      sink: new RecordingSink(),
      logger,
    });
    try {
      const version = await withClient(db15.url, (client) =>
        client.query<{ v: string }>("SELECT current_setting('server_version_num') AS v"),
      );
      expect(Number(version.rows[0]?.v)).toBeLessThan(170000);
      const warnings = lines.map((line) => JSON.parse(line) as { level: number; msg: string });
      expect(warnings).toContainEqual(
        expect.objectContaining({
          level: 40,
          msg: expect.stringContaining('database.failoverSlot needs PostgreSQL 17'),
        }),
      );
    } finally {
      await listener.stop();
    }
  });
});
