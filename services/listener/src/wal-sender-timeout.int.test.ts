/**
 * PostgreSQL ends a replication connection that sends nothing for wal_sender_timeout; the listener's
 * status interval keeps it alive while reading is paused, so an interval at or above the timeout is
 * refused at start, with the fix. wal_sender_timeout is a per-connection setting (PostgreSQL 12+): set
 * on the isolated database only, it applies to the listener's connections to it and to nothing else.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ErrorCode, isWalpurgeError } from '@walpurge/core';
import { createIsolatedDatabase, uniqueName, withDatabase, type IsolatedDatabase } from '@walpurge/testing';
import pg from 'pg';
import { listenerConfig, newListener, startListener } from './test-support/harness.js';
import { RecordingSink } from './testing/recording-sink.js';

const services = inject('services');

describe('statusIntervalMs against the server’s wal_sender_timeout', () => {
  let db: IsolatedDatabase;

  beforeAll(async () => {
    db = await createIsolatedDatabase(services.databaseUrl, 'listener_wst');
    const admin = new pg.Client({ connectionString: withDatabase(services.databaseUrl, 'postgres') });
    await admin.connect();
    try {
      await admin.query(`ALTER DATABASE ${db.name} SET wal_sender_timeout = '1s'`);
    } finally {
      await admin.end();
    }
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      await client.query('CREATE TABLE items (id int PRIMARY KEY, v int)');
    } finally {
      await client.end();
    }
  });

  afterAll(async () => {
    await db?.drop();
  });

  it('refuses to start when the interval is not below the timeout, naming both and the fix', async () => {
    const slot = uniqueName('wst_refused');
    const listener = newListener({
      config: listenerConfig(db.url, slot, ['items'], { statusIntervalMs: 1500 }),
      sink: new RecordingSink(),
    });
    let error: unknown;
    try {
      await listener.start(new AbortController().signal);
    } catch (caught) {
      error = caught;
    } finally {
      await listener.stop();
    }
    expect(isWalpurgeError(error) && error.code).toBe(ErrorCode.ConfigInvalid);
    expect((error as Error).message).toBe(
      "database.statusIntervalMs (1500 ms) is not below the server's wal_sender_timeout (1000 ms): PostgreSQL would end the replication connection whenever the listener pauses reading",
    );
    expect(isWalpurgeError(error) && error.hint).toMatch(/set database\.statusIntervalMs to at most 333/);
  });

  it('streams with an interval well below the timeout', async () => {
    const slot = uniqueName('wst_ok');
    const sink = new RecordingSink();
    const listener = await startListener({
      config: listenerConfig(db.url, slot, ['items'], { statusIntervalMs: 250 }),
      sink,
    });
    try {
      const client = new pg.Client({ connectionString: db.url });
      await client.connect();
      try {
        await client.query('INSERT INTO items VALUES (1, 1)');
      } finally {
        await client.end();
      }
      await sink.waitForEvents(1);
      // Several timeouts' worth of an idle connection: the status updates keep it.
      await new Promise((resolve) => setTimeout(resolve, 3000));
      expect(listener.isReady()).toBe(true);
    } finally {
      await listener.stop();
    }
  });
});
