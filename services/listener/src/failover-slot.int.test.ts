/**
 * database.failoverSlot on the server under test (`npm test` runs this on 13 to 18, see
 * test/bin/pg-version-subset.ts): 17+ creates the slot with failover (so standbys with
 * sync_replication_slots carry it) and streams from it; older servers cannot, and the listener says so.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { WalpurgeConfig } from '@walpurge/config';
import { createLogger } from '@walpurge/core';
import {
  createIsolatedDatabase,
  serverMajor,
  uniqueName,
  withPgClient,
  type IsolatedDatabase,
} from '@walpurge/testing';
import { startListener } from './test-support/harness.js';
import { RecordingSink } from './testing/recording-sink.js';

function failoverConfig(url: string, slot: string): WalpurgeConfig {
  return WalpurgeConfig.parse({
    database: { url, slot, publication: slot, tables: ['items'], heartbeatIntervalMs: 0, failoverSlot: true },
    rules: [],
  });
}

describe('database.failoverSlot', () => {
  let db: IsolatedDatabase;
  let major: number;

  beforeAll(async () => {
    db = await createIsolatedDatabase(inject('services').databaseUrl, 'failover');
    major = await withPgClient(db.url, async (client) => {
      await client.query('CREATE TABLE items (id int PRIMARY KEY)');
      return serverMajor(client);
    });
  });

  afterAll(async () => {
    await db?.drop();
  });

  it('creates the slot with failover on PostgreSQL 17+ and streams from it; older servers warn and get an ordinary slot', async () => {
    const slot = uniqueName('failover');
    const sink = new RecordingSink();
    const lines: string[] = [];
    const logger = createLogger({
      level: 'warn',
      pretty: false,
      destination: { write: (l) => lines.push(l) },
    });
    const listener = await startListener({ config: failoverConfig(db.url, slot), sink, logger });
    try {
      const warnings = lines.map((line) => JSON.parse(line) as { level: number; msg: string });
      const warning = expect.objectContaining({
        level: 40,
        msg: expect.stringContaining('database.failoverSlot needs PostgreSQL 17'),
      });
      await withPgClient(db.url, async (client) => {
        // to_jsonb: pg_replication_slots has no failover column before 17.
        const { rows } = await client.query<{ failover: boolean | null }>(
          "SELECT (to_jsonb(s) ->> 'failover')::boolean AS failover FROM pg_replication_slots s WHERE slot_name = $1",
          [slot],
        );
        if (major >= 17) {
          expect(rows).toEqual([{ failover: true }]);
          expect(warnings).not.toContainEqual(warning);
        } else {
          expect(rows).toEqual([{ failover: null }]);
          expect(warnings).toContainEqual(warning);
        }
        await client.query('INSERT INTO items VALUES (1)');
      });
      await sink.waitForEvents(1);
    } finally {
      await listener.stop();
    }
  });
});
