import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ErrorCode, WalpurgeError, createMetricsRegistry } from '@walpurge/core';
import { compareLsn, parseLsn, type ChangeEvent } from '@walpurge/protocol';
import { createIsolatedDatabase, uniqueName, waitFor, type IsolatedDatabase } from '@walpurge/testing';
import type { Listener } from './listener.js';
import {
  confirmedFlush,
  forTable,
  listenerConfig as configFor,
  metricValue,
  newListener,
  startError,
  startListener,
} from './test-support/harness.js';
import { RecordingSink } from './testing/recording-sink.js';

const services = inject('services');

function listenerConfig(url: string, slot: string, tables: string[], rulesTables: string[] = []) {
  return configFor(url, slot, tables, { rulesTables });
}

describe('listener decoding (PostgreSQL → change events)', () => {
  let db: IsolatedDatabase;
  let client: pg.Client;
  let listener: Listener;
  const sink = new RecordingSink();
  const slot = uniqueName('decode');

  beforeAll(async () => {
    db = await createIsolatedDatabase(services.databaseUrl, 'listener_decode');
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
    await client.query(`
      CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
      CREATE TABLE users (id int PRIMARY KEY, email text, name text);
      CREATE TABLE types (
        id bigint PRIMARY KEY, i2 int2, i4 int4, i8 int8, num numeric(40, 10), f4 float4, f8 float8, b bool,
        t text, vc varchar(20), u uuid, j json, jb jsonb, by bytea, ts timestamp, tstz timestamptz, d date,
        ia int[], ta text[], i8a int8[], m mood, ma mood[], nothing text);
      CREATE TABLE memberships (org_id int, user_id int, role text, PRIMARY KEY (org_id, user_id));
      CREATE TABLE documents (id int PRIMARY KEY, title text, body text);
      ALTER TABLE documents ALTER COLUMN body SET STORAGE EXTERNAL;
      CREATE TABLE audit (id int PRIMARY KEY, status text, note text);
      ALTER TABLE audit REPLICA IDENTITY FULL;
      CREATE TABLE logs (id serial PRIMARY KEY, line text);
      CREATE TABLE unpublished (id serial PRIMARY KEY, v text);
    `);
    const config = listenerConfig(db.url, slot, [
      'users',
      'types',
      'memberships',
      'documents',
      'audit',
      'public.logs',
    ]);
    listener = await startListener({ config, sink });
  });

  afterAll(async () => {
    await listener?.stop();
    await client?.end();
    await db?.drop();
  });

  it('creates the publication for the configured tables (users → public.users) and the slot', async () => {
    const { rows } = await client.query<{ t: string }>(
      "SELECT schemaname || '.' || tablename AS t FROM pg_publication_tables WHERE pubname = $1 ORDER BY 1",
      [slot],
    );
    expect(rows.map((row) => row.t)).toEqual([
      'public.audit',
      'public.documents',
      'public.logs',
      'public.memberships',
      'public.types',
      'public.users',
    ]);
    const slots = await client.query('SELECT plugin FROM pg_replication_slots WHERE slot_name = $1', [slot]);
    expect(slots.rows[0]).toEqual({ plugin: 'pgoutput' });
  });

  it('emits insert, update and delete with xid, commit LSN, commit time and db', async () => {
    await client.query('BEGIN');
    const { rows } = await client.query<{ xid: string }>('SELECT txid_current()::text AS xid');
    await client.query("INSERT INTO users VALUES (1, 'a@x', 'Ann')");
    await client.query("UPDATE users SET email = 'b@x' WHERE id = 1");
    await client.query('COMMIT');
    await client.query('DELETE FROM users WHERE id = 1');
    await waitFor('3 user events', async () => forTable(sink.events, 'users').length >= 3);
    const [insert, update, remove] = forTable(sink.events, 'users') as [
      ChangeEvent,
      ChangeEvent,
      ChangeEvent,
    ];
    expect(insert).toMatchObject({
      v: 1,
      op: 'c',
      key: { id: 1 },
      before: null,
      after: { id: 1, email: 'a@x', name: 'Ann' },
      unchanged: [],
    });
    expect(insert.source).toMatchObject({
      db: db.name,
      schema: 'public',
      table: 'users',
      xid: Number(rows[0]?.xid),
      origin: null,
    });
    expect(Date.now() - Date.parse(insert.source.commitTs)).toBeLessThan(60_000);
    expect(update).toMatchObject({
      op: 'u',
      key: { id: 1 },
      before: { id: 1 },
      after: { id: 1, email: 'b@x', name: 'Ann' },
    });
    expect(update.source.lsn).toBe(insert.source.lsn); // same transaction, same commit LSN
    expect(remove).toMatchObject({ op: 'd', key: { id: 1 }, before: { id: 1 }, after: null });
    expect(compareLsn(remove.source.lsn, insert.source.lsn)).toBe(1);
  });

  it('converts every common type losslessly (data-type matrix)', async () => {
    await client.query(`
      INSERT INTO types VALUES (
        9007199254740993, -32768, 2147483647, -9223372036854775808, 123456789012345678901234567890.0123456789,
        1.5, 0.1, true, 'tëxt "quoted"', 'short', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": [1, 2.5, null]}',
        '{"nested": {"k": "v"}}', '\\xdeadbeef', '2026-11-22 14:00:00.123456', '2026-11-22 15:00:00.654321+01', '2026-02-28',
        '{1,NULL,3}', '{"a,b","c\\"d",NULL}', '{9223372036854775807}', 'happy', '{sad,ok}', NULL)`);
    await waitFor('types event', async () => forTable(sink.events, 'types').length >= 1);
    const after = forTable(sink.events, 'types')[0]?.after;
    expect(after).toEqual({
      id: '9007199254740993',
      i2: -32768,
      i4: 2147483647,
      i8: '-9223372036854775808',
      num: '123456789012345678901234567890.0123456789',
      f4: 1.5,
      f8: 0.1,
      b: true,
      t: 'tëxt "quoted"',
      vc: 'short',
      u: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
      j: { a: [1, 2.5, null] },
      jb: { nested: { k: 'v' } },
      by: '\\xdeadbeef',
      ts: '2026-11-22T14:00:00.123456',
      tstz: '2026-11-22T14:00:00.654321Z',
      d: '2026-02-28',
      ia: [1, null, 3],
      ta: ['a,b', 'c"d', null],
      i8a: ['9223372036854775807'],
      m: 'happy',
      ma: ['sad', 'ok'],
      nothing: null,
    });
    expect(forTable(sink.events, 'types')[0]?.key).toEqual({ id: '9007199254740993' });
  });

  it('keys composite primary keys and reports the old key when it changes', async () => {
    await client.query("INSERT INTO memberships VALUES (7, 8, 'admin')");
    await client.query('UPDATE memberships SET user_id = 9 WHERE org_id = 7 AND user_id = 8');
    await waitFor('membership events', async () => forTable(sink.events, 'memberships').length >= 2);
    const [insert, update] = forTable(sink.events, 'memberships') as [ChangeEvent, ChangeEvent];
    expect(insert.key).toEqual({ org_id: 7, user_id: 8 });
    expect(update).toMatchObject({
      key: { org_id: 7, user_id: 9 },
      before: { org_id: 7, user_id: 8 },
      after: { org_id: 7, user_id: 9, role: 'admin' },
    });
  });

  it('lists an unchanged TOASTed column in `unchanged` instead of reporting null', async () => {
    const body = 'x'.repeat(100_000);
    await client.query('INSERT INTO documents VALUES (1, $1, $2)', ['draft', body]);
    await client.query("UPDATE documents SET title = 'final' WHERE id = 1");
    await waitFor('document events', async () => forTable(sink.events, 'documents').length >= 2);
    const [insert, update] = forTable(sink.events, 'documents') as [ChangeEvent, ChangeEvent];
    expect((insert.after?.['body'] as string).length).toBe(100_000);
    expect(update.after).toEqual({ id: 1, title: 'final' });
    expect(update.after).not.toHaveProperty('body');
    expect(update.unchanged).toEqual(['body']);
  });

  it('sends whole old rows under REPLICA IDENTITY FULL and still keys by primary key', async () => {
    await client.query("INSERT INTO audit VALUES (1, 'new', 'n1')");
    await client.query("UPDATE audit SET status = 'done' WHERE id = 1");
    await client.query('DELETE FROM audit WHERE id = 1');
    await waitFor('audit events', async () => forTable(sink.events, 'audit').length >= 3);
    const [, update, remove] = forTable(sink.events, 'audit') as [ChangeEvent, ChangeEvent, ChangeEvent];
    expect(update).toMatchObject({
      key: { id: 1 },
      before: { id: 1, status: 'new', note: 'n1' },
      after: { id: 1, status: 'done', note: 'n1' },
    });
    expect(remove).toMatchObject({
      key: { id: 1 },
      before: { id: 1, status: 'done', note: 'n1' },
      after: null,
    });
  });

  it('emits truncate events, one per table', async () => {
    await client.query("INSERT INTO logs (line) VALUES ('a')");
    await client.query('TRUNCATE logs');
    await waitFor('truncate event', async () =>
      forTable(sink.events, 'logs').some((event) => event.op === 't'),
    );
    const truncate = forTable(sink.events, 'logs').find((event) => event.op === 't');
    expect(truncate).toMatchObject({
      op: 't',
      key: null,
      before: null,
      after: null,
      source: { schema: 'public', table: 'logs' },
    });
  });

  it('streams a 50,000-row transaction in bounded chunks and acknowledges it only after the last', async () => {
    const before = sink.calls.length;
    await client.query("INSERT INTO logs (line) SELECT 'row ' || g FROM generate_series(1, 50000) g");
    await waitFor(
      '50,000 log inserts',
      async () => forTable(sink.events, 'logs').filter((e) => e.op === 'c').length >= 50_001,
      { timeoutMs: 90_000 },
    );
    const calls = sink.calls
      .slice(before)
      .filter((call) => call.some((event) => event.source.table === 'logs'));
    expect(calls.length).toBeGreaterThanOrEqual(50);
    expect(Math.max(...calls.map((call) => call.length))).toBeLessThanOrEqual(1000);
    const lsn = forTable(sink.events, 'logs').at(-1)?.source.lsn as string;
    await waitFor(
      'slot confirmed past the big transaction',
      async () => compareLsn(await confirmedFlush(client, slot), lsn) > 0,
      { timeoutMs: 30_000 },
    );
  });

  it('lets the slot follow the WAL when only unpublished tables change (idle-slot advancement)', async () => {
    const start = await confirmedFlush(client, slot);
    await client.query("INSERT INTO unpublished (v) SELECT 'x' FROM generate_series(1, 2000)");
    const { rows } = await client.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
    const target = rows[0]?.lsn as string;
    expect(compareLsn(target, start)).toBe(1);
    await waitFor(
      'confirmed_flush_lsn to reach the WAL end',
      async () => compareLsn(await confirmedFlush(client, slot), target) >= 0,
      {
        timeoutMs: 30_000,
        intervalMs: 200,
      },
    );
    expect(listener.durableLsn()).not.toBeNull();
    expect(parseLsn(listener.durableLsn() as string)).toBeGreaterThanOrEqual(parseLsn(target));
  });
});

describe('listener acknowledgement and resilience', () => {
  let db: IsolatedDatabase;
  let client: pg.Client;

  beforeAll(async () => {
    db = await createIsolatedDatabase(services.databaseUrl, 'listener_ack');
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
    await client.query('CREATE TABLE items (id int PRIMARY KEY, v int)');
  });

  afterAll(async () => {
    await client?.end();
    await db?.drop();
  });

  it('never confirms a commit the sink did not acknowledge, and replays it after the sink recovers', async () => {
    const slot = uniqueName('ack');
    const sink = new RecordingSink();
    const listener = await startListener({ config: listenerConfig(db.url, slot, ['items']), sink });
    try {
      await client.query('INSERT INTO items VALUES (1, 1)');
      await sink.waitForEvents(1);
      await waitFor('first commit confirmed', async () => listener.durableLsn() !== null);
      sink.failWith = new WalpurgeError(ErrorCode.KafkaUnavailable, 'down', { retriable: true });
      const confirmedBefore = await confirmedFlush(client, slot);
      await client.query('INSERT INTO items VALUES (2, 2)');
      const { rows } = await client.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
      // While the sink fails, the listener keeps reconnecting; the slot must not pass the failed commit.
      await new Promise((resolve) => setTimeout(resolve, 2500));
      const confirmedDuring = await confirmedFlush(client, slot);
      expect(compareLsn(confirmedDuring, rows[0]?.lsn as string)).toBe(-1);
      expect(compareLsn(confirmedDuring, confirmedBefore)).toBeGreaterThanOrEqual(0);
      sink.failWith = undefined;
      await waitFor(
        'row 2 delivered after recovery',
        async () => sink.events.some((event) => event.key?.['id'] === 2),
        { timeoutMs: 30_000 },
      );
      await waitFor(
        'slot confirmed past row 2',
        async () => compareLsn(await confirmedFlush(client, slot), rows[0]?.lsn as string) >= 0,
        {
          timeoutMs: 30_000,
        },
      );
    } finally {
      await listener.stop();
    }
  });

  it('pauses reading while the sink is busy, keeping pending events bounded, and delivers everything after', async () => {
    const slot = uniqueName('pressure');
    const sink = new RecordingSink();
    const registry = createMetricsRegistry({ defaultMetrics: false });
    const maxPendingEvents = 300;
    const listener = await startListener({
      config: listenerConfig(db.url, slot, ['items']),
      sink,
      registry,
      tuning: { batchSize: 100, maxPendingEvents },
    });
    const rows = 20_000;
    try {
      sink.block();
      await client.query('INSERT INTO items SELECT g, g FROM generate_series(1000, 999 + $1::int) g', [rows]);
      await waitFor(
        'reading paused',
        async () => ((await metricValue(registry, 'walpurge_listener_backpressure_pauses_total')) ?? 0) >= 1,
      );
      // Set when reading paused (and refreshed every second); while the sink is blocked it stays put.
      const pending = await waitFor(
        'pending gauge',
        async () => (await metricValue(registry, 'walpurge_listener_pending_events')) || undefined,
        { timeoutMs: 5000 },
      );
      // Paused at the limit; a socket read already in hand (≤ 64 KiB of pgoutput) is still decoded.
      expect(pending).toBeGreaterThanOrEqual(maxPendingEvents);
      expect(pending).toBeLessThan(maxPendingEvents + 3000);
      expect(pending).toBeLessThan(rows / 4);
      expect(sink.events.length).toBe(0);
      // The transaction is committed but not delivered: that is lag, even though no chunk carries its
      // commit yet. The lag gauge is refreshed every second (the pending gauges also at the pause).
      await waitFor(
        'lag reported',
        async () => ((await metricValue(registry, 'walpurge_listener_replication_lag_seconds')) ?? 0) > 0,
        { timeoutMs: 5000 },
      );
      sink.release();
      const events = await sink.waitForEvents(rows, 60_000);
      expect(new Set(events.map((event) => event.key?.['id'])).size).toBe(rows);
      expect(Math.max(...sink.calls.map((call) => call.length))).toBeLessThanOrEqual(100);
      expect(await metricValue(registry, 'walpurge_listener_backpressure_pauses_total')).toBeGreaterThan(1);
    } finally {
      sink.release();
      await listener.stop();
    }
  });

  it('runs a second listener on the same slot as standby that takes over when the first stops', async () => {
    const slot = uniqueName('standby');
    const config = listenerConfig(db.url, slot, ['items']);
    const first = new RecordingSink();
    const second = new RecordingSink();
    const activeRegistry = createMetricsRegistry({ defaultMetrics: false });
    const standbyRegistry = createMetricsRegistry({ defaultMetrics: false });
    const active = await startListener({ config, sink: first, registry: activeRegistry });
    const standby = newListener({ config, sink: second, registry: standbyRegistry });
    await standby.start(new AbortController().signal);
    const lag = 'walpurge_listener_replication_lag_seconds';
    try {
      await new Promise((resolve) => setTimeout(resolve, 1500));
      expect(standby.isReady()).toBe(false);
      await client.query('INSERT INTO items VALUES (10, 1)');
      await first.waitForEvents(1);
      await waitFor('active reports lag', async () => (await metricValue(activeRegistry, lag)) !== undefined);
      // The standby's failed attempts at the slot leave no lag figures behind for alerts to read.
      expect(await metricValue(standbyRegistry, 'walpurge_listener_streaming')).toBe(0);
      expect(await metricValue(standbyRegistry, lag)).toBeUndefined();
      expect(await metricValue(standbyRegistry, 'walpurge_listener_pending_events')).toBeUndefined();
      await active.stop();
      expect(await metricValue(activeRegistry, 'walpurge_listener_streaming')).toBe(0);
      expect(await metricValue(activeRegistry, lag)).toBeUndefined();
      expect(await metricValue(activeRegistry, 'walpurge_listener_durable_lsn')).toBeUndefined();
      await waitFor('standby takes over', async () => standby.isReady(), { timeoutMs: 30_000 });
      await waitFor(
        'new active reports lag',
        async () => (await metricValue(standbyRegistry, lag)) !== undefined,
      );
      expect(await metricValue(standbyRegistry, 'walpurge_listener_streaming')).toBe(1);
      await client.query('INSERT INTO items VALUES (11, 1)');
      const events = await second.waitForEvents(1);
      expect(events.map((event) => event.key?.['id'])).toContain(11);
      expect(events.map((event) => event.key?.['id'])).not.toContain(10); // acknowledged by the first
    } finally {
      await active.stop();
      await standby.stop();
    }
  });
});

describe('listener setup checks', () => {
  let db: IsolatedDatabase;
  let client: pg.Client;

  beforeAll(async () => {
    db = await createIsolatedDatabase(services.databaseUrl, 'listener_setup');
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
    await client.query(
      'CREATE TABLE keyless (a int, b text); CREATE TABLE fine (id int PRIMARY KEY); CREATE TABLE other (id int PRIMARY KEY)',
    );
  });

  afterAll(async () => {
    await client?.query(`DROP ROLE IF EXISTS ${roleName}`).catch(() => {});
    await client?.end();
    await db?.drop();
  });

  const roleName = uniqueName('norepl');

  it('refuses a table without primary key, naming it and the fix, and publishes nothing', async () => {
    const slot = uniqueName('keyless');
    const error = await startError({
      config: listenerConfig(db.url, slot, [], ['keyless', 'fine']),
      sink: new RecordingSink(),
    });
    expect(error.code).toBe(ErrorCode.ReplicaIdentity);
    expect(error.message).toContain('public.keyless');
    expect(error.hint).toContain('REPLICA IDENTITY FULL');
    const { rowCount } = await client.query('SELECT 1 FROM pg_publication WHERE pubname = $1', [slot]);
    expect(rowCount).toBe(0);
  });

  it('names tables that do not exist', async () => {
    const error = await startError({
      config: listenerConfig(db.url, uniqueName('missing'), ['nope.nothing']),
      sink: new RecordingSink(),
    });
    expect(error.code).toBe(ErrorCode.SchemaMismatch);
    expect(error.message).toContain('nope.nothing');
  });

  it('never alters an existing publication that lacks a needed table', async () => {
    const name = uniqueName('pub');
    await client.query(`CREATE PUBLICATION ${name} FOR TABLE fine`);
    const error = await startError({
      config: listenerConfig(db.url, name, ['fine', 'other']),
      sink: new RecordingSink(),
    });
    expect(error.code).toBe(ErrorCode.PublicationMismatch);
    expect(error.hint).toContain('ALTER PUBLICATION');
    const { rows } = await client.query('SELECT tablename FROM pg_publication_tables WHERE pubname = $1', [
      name,
    ]);
    expect(rows).toEqual([{ tablename: 'fine' }]);
  });

  it('explains a missing REPLICATION privilege', async () => {
    await client.query(`CREATE ROLE ${roleName} LOGIN NOREPLICATION NOSUPERUSER`);
    const url = new URL(db.url);
    url.username = roleName;
    const error = await startError({
      config: listenerConfig(url.toString(), uniqueName('priv'), ['fine']),
      sink: new RecordingSink(),
    });
    expect(error.code).toBe(ErrorCode.Privileges);
    expect(error.hint).toContain('WITH REPLICATION');
  });
});
