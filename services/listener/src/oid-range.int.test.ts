import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  findPostgresBinDir,
  startLocalPostgres,
  uniqueName,
  waitFor,
  type LocalPostgres,
} from '@walpurge/testing';
import type { Listener } from './listener.js';
import { listenerConfig, startListener } from './test-support/harness.js';
import { RecordingSink } from './testing/recording-sink.js';

/**
 * OIDs are unsigned 32-bit: a long-lived cluster hands out OIDs above 2^31, which `oid::int` turns
 * negative. Then the catalog's types and primary keys (keyed by OID) match nothing the stream sends.
 * A throwaway cluster whose OID counter starts at 3,000,000,000 makes every object we create such.
 */
describe('listener on a cluster whose OIDs are above 2^31', () => {
  let server: LocalPostgres | undefined;
  let client: pg.Client;
  let listener: Listener | undefined;
  let skipReason = '';
  const sink = new RecordingSink();

  beforeAll(async () => {
    try {
      findPostgresBinDir();
    } catch (error) {
      skipReason = `no local PostgreSQL binaries: ${(error as Error).message}`;
      return;
    }
    server = await startLocalPostgres({ nextOid: 3_000_000_000, settings: { wal_level: 'logical' } });
    client = new pg.Client({ connectionString: server.url });
    await client.connect();
    await client.query(`
      CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
      CREATE TABLE audit (id int PRIMARY KEY, moods mood[], note text);
      ALTER TABLE audit REPLICA IDENTITY FULL;`);
    const slot = uniqueName('bigoid');
    listener = await startListener({ config: listenerConfig(server.url, slot, ['audit']), sink });
  }, 120_000);

  afterAll(async () => {
    await listener?.stop();
    await client?.end();
    await server?.stop();
  });

  it('creates objects with OIDs above 2^31 (the premise)', async (context) => {
    if (!server) return context.skip(skipReason);
    const { rows } = await client.query<{ oid: string }>("SELECT 'audit'::regclass::oid::text AS oid");
    expect(Number(rows[0]?.oid)).toBeGreaterThan(2 ** 31);
  });

  it('keys a REPLICA IDENTITY FULL table by its primary key and converts arrays of its own types', async (context) => {
    if (!server) return context.skip(skipReason);
    await client.query(`INSERT INTO audit VALUES (1, '{sad,ok}', 'a')`);
    await client.query(`UPDATE audit SET note = 'b' WHERE id = 1`);
    await waitFor('2 events', async () => sink.events.length >= 2);
    const [insert, update] = sink.events;
    expect(insert).toMatchObject({
      op: 'c',
      key: { id: 1 },
      after: { id: 1, moods: ['sad', 'ok'], note: 'a' },
    });
    expect(update).toMatchObject({
      op: 'u',
      key: { id: 1 },
      before: { id: 1, moods: ['sad', 'ok'], note: 'a' },
      after: { id: 1, moods: ['sad', 'ok'], note: 'b' },
    });
  });
});
