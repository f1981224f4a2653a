/**
 * Decoding details beyond the basic op/type matrix of listener.int.test.ts: replication origin and
 * commit timestamp, tables without a primary key (REPLICA IDENTITY FULL / USING INDEX), more types,
 * TOAST under FULL, and multi-table truncates.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { compareLsn, messageKey, type ChangeEvent } from '@walpurge/protocol';
import { createIsolatedDatabase, uniqueName, waitFor, type IsolatedDatabase } from '@walpurge/testing';
import type { Listener } from './listener.js';
import { currentWalLsn, forTable, listenerConfig, startListener } from './test-support/harness.js';
import { RecordingSink } from './testing/recording-sink.js';

const services = inject('services');

describe('listener decoding details', () => {
  let db: IsolatedDatabase;
  let client: pg.Client;
  let listener: Listener;
  const sink = new RecordingSink();
  const slot = uniqueName('decode2');
  const origin = uniqueName('origin');

  const eventsOf = async (table: string, count: number): Promise<ChangeEvent[]> => {
    await waitFor(`${count} ${table} events`, async () => forTable(sink.events, table).length >= count);
    return forTable(sink.events, table);
  };

  beforeAll(async () => {
    db = await createIsolatedDatabase(services.databaseUrl, 'listener_decode2');
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
    await client.query(`
      CREATE DOMAIN positive AS int CHECK (VALUE > 0);
      CREATE TABLE plain (id int PRIMARY KEY, v text);
      CREATE TABLE tags (name text, weight int);
      ALTER TABLE tags REPLICA IDENTITY FULL;
      CREATE TABLE codes (code text NOT NULL, label text);
      CREATE UNIQUE INDEX codes_code ON codes (code);
      ALTER TABLE codes REPLICA IDENTITY USING INDEX codes_code;
      CREATE TABLE more_types (
        id int PRIMARY KEY, iv interval, tm time, tmtz timetz, nan numeric, inf timestamptz, e text,
        tsa timestamptz[], ba bool[], ua uuid[], ja jsonb, jnull jsonb, dom positive, ch char(3), ip inet,
        by bytea, nul text);
      CREATE TABLE big_full (id int PRIMARY KEY, title text, body text);
      ALTER TABLE big_full ALTER COLUMN body SET STORAGE EXTERNAL;
      ALTER TABLE big_full REPLICA IDENTITY FULL;
      CREATE TABLE t1 (id int PRIMARY KEY);
      CREATE TABLE t2 (id int PRIMARY KEY);
    `);
    await client.query('SELECT pg_replication_origin_create($1)', [origin]);
    const config = listenerConfig(db.url, slot, [
      'plain',
      'tags',
      'codes',
      'more_types',
      'big_full',
      't1',
      't2',
    ]);
    listener = await startListener({ config, sink });
  });

  afterAll(async () => {
    await listener?.stop();
    await client?.query('SELECT pg_replication_origin_drop($1)', [origin]).catch(() => {});
    await client?.end();
    await db?.drop();
  });

  it('carries the replication origin, the exact commit timestamp and the commit LSN of the transaction', async () => {
    const writer = new pg.Client({ connectionString: db.url });
    await writer.connect();
    let walBeforeCommit: string;
    let walAfterCommit: string;
    try {
      await writer.query('SELECT pg_replication_origin_session_setup($1)', [origin]);
      await writer.query('BEGIN');
      // With an origin, the decoded commit time is the origin's timestamp: a value we can predict.
      await writer.query("SELECT pg_replication_origin_xact_setup('0/AB', '2020-01-02 03:04:05.678+00')");
      await writer.query("INSERT INTO plain VALUES (1, 'from elsewhere')");
      walBeforeCommit = await currentWalLsn(writer);
      await writer.query('COMMIT');
      walAfterCommit = await currentWalLsn(writer);
      await writer.query('SELECT pg_replication_origin_session_reset()');
    } finally {
      await writer.end();
    }
    await client.query("INSERT INTO plain VALUES (2, 'local')");
    const [remote, local] = (await eventsOf('plain', 2)) as [ChangeEvent, ChangeEvent];
    expect(remote.source).toMatchObject({ origin, commitTs: '2020-01-02T03:04:05.678Z' });
    // source.lsn is the commit record's position: after the last change, before the commit's end.
    expect(compareLsn(remote.source.lsn, walBeforeCommit)).toBeGreaterThanOrEqual(0);
    expect(compareLsn(remote.source.lsn, walAfterCommit)).toBe(-1);
    expect(local.source.origin).toBeNull();
  });

  it('replicates a table without primary key under REPLICA IDENTITY FULL, keyed by table so its order holds', async () => {
    await client.query("INSERT INTO tags VALUES ('red', 1)");
    await client.query("UPDATE tags SET weight = 2 WHERE name = 'red'");
    await client.query("DELETE FROM tags WHERE name = 'red'");
    const [insert, update, remove] = (await eventsOf('tags', 3)) as [ChangeEvent, ChangeEvent, ChangeEvent];
    expect(insert).toMatchObject({ op: 'c', key: null, before: null, after: { name: 'red', weight: 1 } });
    expect(update).toMatchObject({
      op: 'u',
      key: null,
      before: { name: 'red', weight: 1 },
      after: { name: 'red', weight: 2 },
    });
    expect(remove).toMatchObject({ op: 'd', key: null, before: { name: 'red', weight: 2 }, after: null });
    // Without a stable row identity, every change of the table shares one Kafka key (one partition).
    expect(new Set([insert, update, remove].map(messageKey))).toEqual(new Set(['public.tags']));
  });

  it('replicates a table without primary key under REPLICA IDENTITY USING INDEX, keyed by the index', async () => {
    await client.query("INSERT INTO codes VALUES ('a', 'first')");
    await client.query("UPDATE codes SET code = 'b' WHERE code = 'a'");
    await client.query("UPDATE codes SET label = 'second' WHERE code = 'b'");
    await client.query("DELETE FROM codes WHERE code = 'b'");
    const [insert, rekey, relabel, remove] = (await eventsOf('codes', 4)) as [
      ChangeEvent,
      ChangeEvent,
      ChangeEvent,
      ChangeEvent,
    ];
    expect(insert).toMatchObject({ key: { code: 'a' }, after: { code: 'a', label: 'first' } });
    expect(rekey).toMatchObject({ key: { code: 'b' }, before: { code: 'a' } });
    expect(relabel).toMatchObject({ key: { code: 'b' }, before: { code: 'b' }, after: { label: 'second' } });
    expect(remove).toMatchObject({ op: 'd', key: { code: 'b' }, before: { code: 'b' }, after: null });
  });

  it('converts intervals, times, special values, typed arrays, domains and keeps NULL distinct from empty', async () => {
    await client.query(`
      INSERT INTO more_types VALUES (
        1, '1 year 2 months 3 days 04:05:06.5', '14:00:00.123456', '14:00:00+02', 'NaN', 'infinity', '',
        '{"2026-11-22 14:00:00+00","2026-11-22 15:30:00.5+01"}', '{t,f,NULL}',
        '{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}', '[1, "two", {"3": false}]', 'null', 5, 'ab', '10.0.0.1/8',
        '\\x', NULL)`);
    const [event] = await eventsOf('more_types', 1);
    expect(event?.after).toEqual({
      id: 1,
      iv: 'P1Y2M3DT4H5M6.5S',
      tm: '14:00:00.123456',
      tmtz: '14:00:00+02',
      nan: 'NaN',
      inf: 'infinity',
      e: '',
      tsa: ['2026-11-22T14:00:00Z', '2026-11-22T14:30:00.5Z'],
      ba: [true, false, null],
      ua: ['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'],
      ja: [1, 'two', { '3': false }],
      jnull: null,
      dom: 5,
      ch: 'ab ',
      ip: '10.0.0.1/8',
      by: '\\x',
      nul: null,
    });
    expect(event?.unchanged).toEqual([]);
  });

  it('fills an unchanged TOASTed column from the old row under REPLICA IDENTITY FULL', async () => {
    const body = 'y'.repeat(50_000);
    await client.query('INSERT INTO big_full VALUES (1, $1, $2)', ['draft', body]);
    await client.query("UPDATE big_full SET title = 'final' WHERE id = 1");
    const [, update] = (await eventsOf('big_full', 2)) as [ChangeEvent, ChangeEvent];
    expect(update.key).toEqual({ id: 1 });
    expect(update.unchanged).toEqual([]);
    expect(update.before).toEqual({ id: 1, title: 'draft', body });
    expect(update.after).toEqual({ id: 1, title: 'final', body });
  });

  it('follows schema changes while streaming (new relation messages) and types created after start (type messages)', async () => {
    await client.query("INSERT INTO plain VALUES (10, 'before')");
    await eventsOf('plain', 3);
    await client.query(`
      CREATE TYPE color AS ENUM ('red', 'blue');
      CREATE DOMAIN quantity AS int CHECK (VALUE >= 0);
      ALTER TABLE plain ADD COLUMN extra int8 DEFAULT 7, ADD COLUMN colors color[], ADD COLUMN qty quantity;
      ALTER TABLE plain RENAME COLUMN v TO label;
      INSERT INTO plain VALUES (11, 'after', 9007199254740993, '{red,blue}', 3);
    `);
    const [, , , after] = (await eventsOf('plain', 4)) as ChangeEvent[];
    expect(after?.after).toEqual({
      id: 11,
      label: 'after',
      extra: '9007199254740993',
      colors: ['red', 'blue'],
      // A domain over int is a number, as it would be had it existed when the listener started.
      qty: 3,
    });
  });

  it('emits one truncate event per table of a multi-table TRUNCATE, in one transaction', async () => {
    await client.query('INSERT INTO t1 VALUES (1); INSERT INTO t2 VALUES (1)');
    await client.query('TRUNCATE t1, t2');
    await waitFor('two truncates', async () => sink.events.filter((e) => e.op === 't').length >= 2);
    const truncates = sink.events.filter((e) => e.op === 't');
    expect(truncates.map((e) => e.source.table).sort()).toEqual(['t1', 't2']);
    expect(truncates[0]?.source.lsn).toBe(truncates[1]?.source.lsn);
    expect(truncates.map(messageKey).sort()).toEqual(['public.t1', 'public.t2']);
  });
});
