/**
 * A slot that walpurge did not keep (dropped while stopped, lost before a standby takes over,
 * re-created by someone else) must stop the listener with the gap named, never be replaced by a new
 * slot at the current WAL position: every change in between would never be purged.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ErrorCode, WalpurgeError } from '@walpurge/core';
import { compareLsn, parseLsn } from '@walpurge/protocol';
import { createIsolatedDatabase, uniqueName, waitFor, type IsolatedDatabase } from '@walpurge/testing';
import { confirmedFlush, listenerConfig, newListener, startListener } from './test-support/harness.js';
import { RecordingSink } from './testing/recording-sink.js';

const services = inject('services');

describe('slot history: a lost or re-created slot is refused', () => {
  let db: IsolatedDatabase;
  let client: pg.Client;

  beforeAll(async () => {
    db = await createIsolatedDatabase(services.databaseUrl, 'slot_history');
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
    await client.query('CREATE TABLE items (id int PRIMARY KEY, v int)');
  });

  afterAll(async () => {
    await client?.end();
    await db?.drop();
  });

  async function recorded(slot: string): Promise<{ lsn: string; system_identifier: string } | undefined> {
    const { rows } = await client.query<{ lsn: string; system_identifier: string }>(
      'SELECT durable_lsn::text AS lsn, system_identifier FROM walpurge_slot_history WHERE slot_name = $1',
      [slot],
    );
    return rows[0];
  }

  async function slotExists(slot: string): Promise<boolean> {
    const { rowCount } = await client.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [
      slot,
    ]);
    return rowCount === 1;
  }

  /** Streams one row through a listener, stops it, and returns the LSN the history holds. */
  async function streamOnceAndStop(slot: string, id: number): Promise<string> {
    const sink = new RecordingSink();
    const listener = await startListener({ config: listenerConfig(db.url, slot, ['items']), sink });
    try {
      await client.query('INSERT INTO items VALUES ($1, 1)', [id]);
      await sink.waitForEvents(1);
    } finally {
      await listener.stop();
    }
    const row = await recorded(slot);
    expect(row?.system_identifier).toMatch(/^\d+$/);
    return row?.lsn as string;
  }

  /**
   * The listener's stop closes its connection, but the server's walsender may hold the slot a
   * moment longer (more so on a loaded machine): drop it once the server has released it.
   */
  async function dropSlot(slot: string): Promise<void> {
    await waitFor(
      `slot ${slot} released`,
      async () =>
        (
          await client.query<{ active: boolean }>(
            'SELECT active FROM pg_replication_slots WHERE slot_name = $1',
            [slot],
          )
        ).rows[0]?.active === false,
      { timeoutMs: 15_000, intervalMs: 20 },
    );
    await client.query('SELECT pg_drop_replication_slot($1)', [slot]);
  }

  function expectGapNamed(error: WalpurgeError | undefined, slot: string, from: string): void {
    expect(error).toBeInstanceOf(WalpurgeError);
    expect(error?.code).toBe(ErrorCode.SlotMissing);
    expect(error?.retriable).toBe(false);
    expect(error?.message).toContain(`"${slot}"`);
    expect(error?.message).toContain(from);
    expect(error?.message).toContain('never purged');
    expect(error?.hint).toContain('walpurge slot reset --purge-all');
  }

  it('records the slot, and never reports a position to the slot past the recorded one', async () => {
    const slot = uniqueName('record');
    const sink = new RecordingSink();
    const listener = await startListener({ config: listenerConfig(db.url, slot, ['items']), sink });
    try {
      for (let id = 1; id <= 20; id += 1) await client.query('INSERT INTO items VALUES ($1, 1)', [100 + id]);
      await sink.waitForEvents(20);
      await waitFor(
        'slot confirmed past the last insert',
        async () =>
          compareLsn(await confirmedFlush(client, slot), (await recorded(slot))?.lsn ?? '0/0') === 0,
        { timeoutMs: 15_000 },
      );
      // Sampled together, in one statement: the slot never leads the history.
      const { rows } = await client.query<{ ahead: boolean }>(
        `SELECT s.confirmed_flush_lsn > h.durable_lsn AS ahead
           FROM pg_replication_slots s JOIN walpurge_slot_history h ON h.slot_name = s.slot_name
          WHERE s.slot_name = $1`,
        [slot],
      );
      expect(rows).toEqual([{ ahead: false }]);
    } finally {
      await listener.stop();
    }
  });

  it('refuses to start when the slot was dropped while walpurge was stopped, naming the gap', async () => {
    const slot = uniqueName('stopped');
    const lsn = await streamOnceAndStop(slot, 1);
    await dropSlot(slot);
    await client.query('INSERT INTO items VALUES (2, 1)'); // in the gap: never read by anyone

    const listener = newListener({
      config: listenerConfig(db.url, slot, ['items']),
      sink: new RecordingSink(),
    });
    const error = await listener.start(new AbortController().signal).then(
      () => undefined,
      (thrown: unknown) => thrown as WalpurgeError,
    );
    await listener.stop();
    expectGapNamed(error, slot, lsn);
    expect(error?.message).toMatch(
      new RegExp(`changes from LSN ${lsn} \\(recorded [^)]+\\) to now \\([0-9A-F]+/[0-9A-F]+\\)`),
    );
    expect(await slotExists(slot)).toBe(false);
  });

  it('refuses a slot re-created by someone else past the recorded LSN', async () => {
    const slot = uniqueName('recreated');
    const lsn = await streamOnceAndStop(slot, 3);
    await dropSlot(slot);
    await client.query('INSERT INTO items VALUES (4, 1)');
    await client.query("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", [slot]);
    const newStart = await confirmedFlush(client, slot);

    const listener = newListener({
      config: listenerConfig(db.url, slot, ['items']),
      sink: new RecordingSink(),
    });
    const error = await listener.start(new AbortController().signal).then(
      () => undefined,
      (thrown: unknown) => thrown as WalpurgeError,
    );
    await listener.stop();
    expectGapNamed(error, slot, lsn);
    expect(error?.message).toContain(`starts at LSN ${newStart}`);
    expect(error?.message).toContain(`from ${lsn} to ${newStart}`);
  });

  it('refuses a history recorded on another cluster (a restored or copied database)', async () => {
    const slot = uniqueName('restored');
    const lsn = await streamOnceAndStop(slot, 9);
    // What a dump restored into another cluster looks like: the row came along, the slot did not
    // (and here, to isolate the check, the slot even exists at the recorded position).
    await client.query("UPDATE walpurge_slot_history SET system_identifier = '1234' WHERE slot_name = $1", [
      slot,
    ]);
    const listener = newListener({
      config: listenerConfig(db.url, slot, ['items']),
      sink: new RecordingSink(),
    });
    const error = await listener.start(new AbortController().signal).then(
      () => undefined,
      (thrown: unknown) => thrown as WalpurgeError,
    );
    await listener.stop();
    expectGapNamed(error, slot, lsn);
    expect(error?.message).toContain(
      'was recorded on another PostgreSQL cluster (system identifier 1234, this one is',
    );
  });

  it('refuses when a standby takes over after the slot was lost, instead of creating a new one', async () => {
    const slot = uniqueName('takeover');
    const config = listenerConfig(db.url, slot, ['items']);
    const leader = await startListener({ config, sink: new RecordingSink() });
    const fatal: WalpurgeError[] = [];
    const standby = newListener({ config, sink: new RecordingSink(), onFatal: (error) => fatal.push(error) });
    // An open session survives ALLOW_CONNECTIONS false: the test drops the slot through it.
    const admin = new pg.Client({ connectionString: services.databaseUrl });
    await admin.connect();
    try {
      await standby.start(new AbortController().signal); // slot busy: stands by, retrying
      await client.query('INSERT INTO items VALUES (5, 1)');
      await waitFor('history recorded', async () => (await recorded(slot)) !== undefined);
      // The primary fails over to a server without the slot: the leader is gone, and so is the slot,
      // before the standby's next attempt (it cannot connect meanwhile).
      await admin.query(`ALTER DATABASE ${db.name} ALLOW_CONNECTIONS false`);
      await leader.stop();
      const lsn = (await recorded(slot))?.lsn as string;
      await waitFor(
        'slot dropped',
        async () => {
          await client.query('SELECT pg_drop_replication_slot($1)', [slot]);
          return true;
        },
        { timeoutMs: 15_000, intervalMs: 20 },
      );
      await client.query('INSERT INTO items VALUES (6, 1)'); // in the gap
      await admin.query(`ALTER DATABASE ${db.name} ALLOW_CONNECTIONS true`);

      await waitFor('standby refuses', async () => fatal.length > 0, { timeoutMs: 30_000 });
      expectGapNamed(fatal[0], slot, lsn);
      expect(standby.isReady()).toBe(false);
      expect(await slotExists(slot)).toBe(false);
    } finally {
      await admin.query(`ALTER DATABASE ${db.name} ALLOW_CONNECTIONS true`).catch(() => {});
      await admin.end();
      await standby.stop();
      await leader.stop();
    }
  });

  it('says which privilege is missing when the role may not create the history table', async () => {
    const slot = uniqueName('noprivs');
    const role = uniqueName('role');
    await client.query(`CREATE ROLE ${role} LOGIN REPLICATION`);
    await client.query(`GRANT SELECT ON items TO ${role}`);
    await client.query(`CREATE PUBLICATION ${slot} FOR TABLE items`);
    try {
      const url = new URL(db.url);
      url.username = role;
      const base = listenerConfig(url.toString(), slot, ['items']);
      const config = { ...base, database: { ...base.database!, slotHistoryTable: `${slot}_history` } };
      const listener = newListener({ config, sink: new RecordingSink() });
      const error = await listener.start(new AbortController().signal).then(
        () => undefined,
        (thrown: unknown) => thrown as WalpurgeError,
      );
      await listener.stop();
      expect(error?.code).toBe(ErrorCode.Privileges);
      expect(error?.message).toContain(`cannot create the slot history table ${slot}_history`);
      expect(error?.hint).toContain(`GRANT CREATE ON SCHEMA public TO <walpurge role>`);
      expect(await slotExists(slot)).toBe(false);
    } finally {
      await client.query(`DROP PUBLICATION ${slot}`);
      await client.query(`DROP OWNED BY ${role}`);
      await client.query(`DROP ROLE ${role}`);
    }
  });

  it('resumes from its own slot after a restart (no false refusal)', async () => {
    const slot = uniqueName('restart');
    await streamOnceAndStop(slot, 7);
    const sink = new RecordingSink();
    await client.query('INSERT INTO items VALUES (8, 1)');
    const listener = await startListener({ config: listenerConfig(db.url, slot, ['items']), sink });
    try {
      await sink.waitForEvents(1);
      expect(sink.events.map((event) => event.key?.['id'])).toContain(8);
      expect(parseLsn((await recorded(slot))?.lsn as string)).toBeGreaterThan(0n);
    } finally {
      await listener.stop();
    }
  });
});
