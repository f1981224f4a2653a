/**
 * pgoutput decoding and change assembly on real bytes. The fixtures/*.hex files were captured from
 * PostgreSQL (version in fixtures/types.json) with pg_logical_slot_get_binary_changes, protocol
 * version 1, under the listener's session settings: one message per line, `<lsn> <xid> <hex>`.
 * Regenerate them (after changing a scenario, or to check another server version) with
 *
 *   export WALPURGE_TEST_DATABASE_URL=postgres://postgres@localhost:5432/postgres   # a superuser, wal_level=logical
 *   pnpm exec tsx --conditions=@walpurge/source services/listener/src/test-support/capture-pgoutput-fixtures.ts
 *
 * which also lists the SQL of each scenario. OIDs, xids, LSNs and commit times differ between
 * captures, so the tests take them from the fixtures (and check them against PostgreSQL's own
 * lsn/xid columns) instead of hard-coding them. Cases PostgreSQL does not produce for the listener
 * (streaming, binary tuples, damaged messages) are built by hand at the end.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { formatLsn, type ChangeEvent } from '@walpurge/protocol';
import { ChangeAssembler } from './change-assembler.js';
import { decodePgoutput } from './pgoutput-decoder.js';
import {
  UNCHANGED_TOAST,
  type BeginMessage,
  type CommitMessage,
  type PgoutputMessage,
  type RelationMessage,
} from './pgoutput-messages.js';
import { TypeConverters, type PgTypeRow } from './value-converters.js';

interface Captured {
  /** As pg_logical_slot_get_binary_changes reported it. */
  lsn: string;
  xid: number;
  message: PgoutputMessage;
}

const FIXTURES = new URL('./fixtures/', import.meta.url);
const meta = JSON.parse(readFileSync(new URL('types.json', FIXTURES), 'utf8')) as {
  serverVersion: string;
  types: PgTypeRow[];
};

function load(name: string): Captured[] {
  return readFileSync(new URL(`${name}.hex`, FIXTURES), 'utf8')
    .trim()
    .split('\n')
    .map((line) => {
      const [lsn, xid, hex] = line.split(' ') as [string, string, string];
      return { lsn, xid: Number(xid), message: decodePgoutput(Buffer.from(hex, 'hex')) };
    });
}

const ALL = [
  'types',
  'update-delete',
  'toast',
  'identity-full',
  'toast-full',
  'identity-index',
  'truncate',
  'origin',
  'message',
];

function messagesOf<T extends PgoutputMessage['tag']>(
  captured: readonly Captured[],
  tag: T,
): Array<Extract<PgoutputMessage, { tag: T }>> {
  return captured.flatMap(({ message }) =>
    message.tag === tag ? [message as Extract<PgoutputMessage, { tag: T }>] : [],
  );
}

function relationNamed(captured: readonly Captured[], table: string): RelationMessage {
  const relation = messagesOf(captured, 'relation').find((message) => message.table === table);
  if (!relation) throw new Error(`no relation message for ${table}`);
  return relation;
}

/** The listener's assembly: catalog types known at start (or none), full_rows keyed by its primary key. */
function assemble(captured: readonly Captured[], types: readonly PgTypeRow[] = meta.types): ChangeEvent[] {
  const primaryKeys = new Map<number, string[]>();
  for (const relation of messagesOf(captured, 'relation'))
    if (relation.table === 'full_rows' || relation.table === 'full_docs')
      primaryKeys.set(relation.relationOid, ['id']);
  const assembler = new ChangeAssembler({ database: 'app', types: new TypeConverters(types), primaryKeys });
  return captured.flatMap(({ message }) => {
    const output = assembler.apply(message);
    return output?.type === 'events' ? output.events : [];
  });
}

/** The parts of the events that do not depend on the capture (OIDs, LSNs, xids, times). */
const rows = (events: readonly ChangeEvent[]) =>
  events.map(({ op, source, key, before, after, unchanged }) => ({
    op,
    table: source.table,
    key,
    before,
    after,
    unchanged,
  }));

const EMPTY_KINDS = {
  n: null,
  f8: null,
  f4: null,
  ts: null,
  tstz: null,
  d: null,
  by: null,
  j: null,
  jb: null,
  m: null,
  dom: null,
  ia: null,
  ta: null,
  ma: null,
  big: null,
  b: null,
  t: null,
  tsa: null,
};

describe(`pgoutput fixtures captured from PostgreSQL ${meta.serverVersion}`, () => {
  it('decodes every captured message, with begin and commit matching what PostgreSQL reported', () => {
    let transactions = 0;
    for (const name of ALL) {
      const captured = load(name);
      let begin: BeginMessage | undefined;
      for (const { lsn, xid, message } of captured) {
        if (message.tag === 'begin') {
          expect(begin, `${name}: nested begin`).toBeUndefined();
          expect(message.xid, name).toBe(xid);
          begin = message;
        } else if (message.tag === 'commit') {
          const commit: CommitMessage = message;
          // The commit row's lsn is the end of the commit record; begin announces the commit's own LSN.
          expect(formatLsn(commit.endLsn), name).toBe(lsn);
          expect(begin?.finalLsn, name).toBe(commit.commitLsn);
          expect(commit.endLsn > commit.commitLsn, name).toBe(true);
          expect(begin?.commitTimeMicros, name).toBe(commit.commitTimeMicros);
          begin = undefined;
          transactions += 1;
        } else if (message.tag !== 'message' || message.transactional) {
          expect(begin, `${name}: ${message.tag} outside a transaction`).toBeDefined();
          expect(xid, name).toBe(begin?.xid);
        }
      }
      expect(begin, `${name}: transaction left open`).toBeUndefined();
    }
    expect(transactions).toBe(1 + 4 + 4 + 4 + 2 + 4 + 6 + 1 + 1);
    // Commit times are microseconds since 1970 (PostgreSQL's epoch is 2000): a recent capture.
    const [first] = messagesOf(load('types'), 'begin');
    expect(Number((first as BeginMessage).commitTimeMicros / 1000n)).toBeGreaterThan(
      Date.parse('2025-01-01'),
    );
  });

  it('decodes type and relation messages: user types before the relation, column flags, type OIDs', () => {
    const captured = load('types');
    const types = messagesOf(captured, 'type');
    const mood = meta.types.find((type) => type.name === 'mood') as PgTypeRow;
    const moods = meta.types.find((type) => type.name === '_mood') as PgTypeRow;
    const positive = meta.types.find((type) => type.name === 'positive') as PgTypeRow;
    // A domain's type message carries the domain's OID but its base type's name (pg_catalog → '').
    expect(types).toEqual([
      { tag: 'type', typeOid: mood.oid, schema: 'public', name: 'mood' },
      { tag: 'type', typeOid: positive.oid, schema: '', name: 'int4' },
      { tag: 'type', typeOid: moods.oid, schema: 'public', name: '_mood' },
    ]);
    const relation = relationNamed(captured, 'kinds');
    expect(captured.findIndex(({ message }) => message === relation)).toBeGreaterThan(
      captured.findIndex(({ message }) => message.tag === 'type'),
    );
    expect(relation).toMatchObject({ schema: 'public', table: 'kinds', replicaIdentity: 'default' });
    expect(
      relation.columns.map(({ name, typeOid, isKey, typeMod }) => [name, typeOid, isKey, typeMod]),
    ).toEqual([
      ['id', 23, true, -1],
      ['n', 1700, false, -1],
      ['f8', 701, false, -1],
      ['f4', 700, false, -1],
      ['ts', 1114, false, -1],
      ['tstz', 1184, false, -1],
      ['d', 1082, false, -1],
      ['by', 17, false, -1],
      ['j', 114, false, -1],
      ['jb', 3802, false, -1],
      ['m', mood.oid, false, -1],
      ['dom', positive.oid, false, -1],
      ['ia', 1007, false, -1],
      ['ta', 1009, false, -1],
      ['ma', moods.oid, false, -1],
      ['big', 20, false, -1],
      ['b', 16, false, -1],
      ['t', 25, false, -1],
      ['tsa', 1185, false, -1],
    ]);
  });

  it('decodes the text of every value exactly as PostgreSQL wrote it, NULLs as null', () => {
    const inserts = messagesOf(load('types'), 'insert');
    expect(inserts.map((insert) => insert.newTuple.slice(0, 8))).toEqual([
      [
        '1',
        '123456789012345678901234567890.123456789012345678901234567890',
        '0.1',
        '1.5',
        '2026-11-22 14:00:00.123456',
        '2026-11-22 08:30:00.000001+00',
        '2026-02-28',
        '\\xdeadbeef00',
      ],
      ['2', 'NaN', '-0', 'NaN', 'infinity', '-infinity', '0044-03-15 BC', '\\x'],
      [
        '3',
        'Infinity',
        '-Infinity',
        '-0',
        '0044-03-15 12:00:00.5 BC',
        '294276-12-31 23:59:59.999999+00',
        'infinity',
        '\\x00ff',
      ],
      [
        '4',
        '0.000',
        '1e+308',
        '3.4e+38',
        '1999-12-31 23:59:59.999999',
        '2000-01-01 00:00:00+00',
        '-infinity',
        null,
      ],
      [
        '5',
        `-${'9'.repeat(300)}.${'1'.repeat(200)}`,
        '5e-324',
        '1.1754944e-38',
        '2026-01-01 00:00:00',
        '1900-01-01 00:00:00+00',
        '2026-01-01',
        null,
      ],
    ]);
    expect(inserts[0]?.newTuple.slice(8)).toEqual([
      '{"b": 1,  "a": [1, 2]}', // json keeps its text
      '{"a": [1, 2], "b": 1}', // jsonb is normalized by PostgreSQL
      'happy',
      '5',
      '{1,NULL,3}',
      '{"a,b","c\\"d",NULL,"NULL"}',
      '{sad,ok}',
      '9223372036854775807',
      't',
      'héllo ✓ "q" \\ x', // lengths are bytes: multibyte UTF-8 must not shift the next value
      '{"2026-11-22 14:00:00+00",infinity}',
    ]);
    expect(inserts[3]?.newTuple.slice(7)).toEqual(new Array(12).fill(null));
  });

  it('assembles inserts into protocol v1 rows: numbers, strings for int8/numeric/specials, ISO timestamps, parsed json, arrays', () => {
    const events = assemble(load('types'));
    expect(events.every((event) => event.source.table === 'kinds' && event.source.schema === 'public')).toBe(
      true,
    );
    expect(rows(events)).toEqual([
      {
        op: 'c',
        table: 'kinds',
        key: { id: 1 },
        before: null,
        after: {
          id: 1,
          n: '123456789012345678901234567890.123456789012345678901234567890',
          f8: 0.1,
          f4: 1.5,
          ts: '2026-11-22T14:00:00.123456',
          tstz: '2026-11-22T08:30:00.000001Z',
          d: '2026-02-28',
          by: '\\xdeadbeef00',
          j: { b: 1, a: [1, 2] },
          jb: { a: [1, 2], b: 1 },
          m: 'happy',
          dom: 5,
          ia: [1, null, 3],
          ta: ['a,b', 'c"d', null, 'NULL'],
          ma: ['sad', 'ok'],
          big: '9223372036854775807',
          b: true,
          t: 'héllo ✓ "q" \\ x',
          tsa: ['2026-11-22T14:00:00Z', 'infinity'],
        },
        unchanged: [],
      },
      {
        op: 'c',
        table: 'kinds',
        key: { id: 2 },
        before: null,
        after: {
          id: 2,
          n: 'NaN',
          f8: -0, // a JSON number: encodes as 0, which PostgreSQL also holds equal to -0
          f4: 'NaN',
          ts: 'infinity',
          tstz: '-infinity',
          d: '0044-03-15 BC', // BC has no ISO-8601 form the protocol promises: PostgreSQL's text
          by: '\\x',
          j: null,
          jb: 'str',
          m: 'sad',
          dom: 1,
          ia: [],
          ta: [''],
          ma: [],
          big: '-9223372036854775808',
          b: false,
          t: '',
          tsa: [],
        },
        unchanged: [],
      },
      {
        op: 'c',
        table: 'kinds',
        key: { id: 3 },
        before: null,
        after: {
          id: 3,
          n: 'Infinity',
          f8: '-Infinity',
          f4: -0,
          ts: '0044-03-15 12:00:00.5 BC',
          tstz: '294276-12-31T23:59:59.999999Z',
          d: 'infinity',
          by: '\\x00ff',
          j: [],
          jb: {},
          m: 'ok',
          dom: 2147483647,
          ia: [
            [1, 2],
            [3, 4],
          ],
          ta: [null],
          ma: ['happy'],
          big: '0',
          b: true,
          t: 'NULL', // the text NULL, not SQL NULL
          tsa: [null],
        },
        unchanged: [],
      },
      {
        op: 'c',
        table: 'kinds',
        key: { id: 4 },
        before: null,
        after: {
          ...EMPTY_KINDS,
          id: 4,
          n: '0.000',
          f8: 1e308,
          f4: 3.4e38,
          ts: '1999-12-31T23:59:59.999999',
          tstz: '2000-01-01T00:00:00Z',
          d: '-infinity',
        },
        unchanged: [],
      },
      {
        op: 'c',
        table: 'kinds',
        key: { id: 5 },
        before: null,
        after: {
          ...EMPTY_KINDS,
          id: 5,
          n: `-${'9'.repeat(300)}.${'1'.repeat(200)}`,
          f8: 5e-324,
          f4: 1.1754944e-38,
          ts: '2026-01-01T00:00:00',
          tstz: '1900-01-01T00:00:00Z',
          d: '2026-01-01',
        },
        unchanged: [],
      },
    ]);
    expect(Object.is(events[1]?.after?.['f8'], -0)).toBe(true);
    const [begin] = messagesOf(load('types'), 'begin') as [BeginMessage];
    expect(events[0]?.source).toEqual({
      db: 'app',
      schema: 'public',
      table: 'kinds',
      lsn: formatLsn(begin.finalLsn),
      xid: begin.xid,
      commitTs: new Date(Number(begin.commitTimeMicros / 1000n)).toISOString(),
      origin: null,
    });
  });

  it('converts a domain like its base type even when the type was created after the catalog was read', () => {
    // A session learns types created while it streams only from type messages. For a domain, that
    // message names the base type (int4): the value must still be a number, as after a reconnect.
    const events = assemble(load('types'), []);
    expect(events.map((event) => event.after?.['dom'])).toEqual([5, 1, 2147483647, null, null]);
    expect(events.map((event) => event.after?.['ma'])).toEqual([['sad', 'ok'], [], ['happy'], null, null]);
    expect(events.map((event) => event.after?.['m'])).toEqual(['happy', 'sad', 'ok', null, null]);
  });

  it("decodes updates with and without the old key ('K') and deletes by key", () => {
    const captured = load('update-delete');
    const updates = messagesOf(captured, 'update');
    const nulls = (count: number) => new Array<null>(count).fill(null);
    expect(updates).toHaveLength(2);
    // Key changed: old key tuple with every non-key column null, then the new row.
    expect(updates[0]?.keyTuple).toEqual(['10', ...nulls(18)]);
    expect(updates[0]?.oldTuple).toBeNull();
    expect(updates[0]?.newTuple).toEqual(['11', ...nulls(16), 'ten', null]);
    // Key unchanged: no old tuple at all.
    expect(updates[1]).toMatchObject({ keyTuple: null, oldTuple: null });
    expect(updates[1]?.newTuple).toEqual(['11', '42', ...nulls(17)]);
    const [remove] = messagesOf(captured, 'delete');
    expect(remove).toMatchObject({ keyTuple: ['11', ...nulls(18)], oldTuple: null });

    expect(rows(assemble(captured))).toEqual([
      {
        op: 'c',
        table: 'kinds',
        key: { id: 10 },
        before: null,
        after: { ...EMPTY_KINDS, id: 10, t: 'ten' },
        unchanged: [],
      },
      {
        op: 'u',
        table: 'kinds',
        key: { id: 11 },
        before: { id: 10 },
        after: { ...EMPTY_KINDS, id: 11, t: 'ten' },
        unchanged: [],
      },
      {
        op: 'u',
        table: 'kinds',
        key: { id: 11 },
        before: { id: 11 },
        after: { ...EMPTY_KINDS, id: 11, n: '42' },
        unchanged: [],
      },
      { op: 'd', table: 'kinds', key: { id: 11 }, before: { id: 11 }, after: null, unchanged: [] },
    ]);
  });

  it("marks an unchanged TOASTed column ('u') as unchanged instead of null or empty", () => {
    const captured = load('toast');
    const [insert] = messagesOf(captured, 'insert');
    const body = insert?.newTuple[2] as string;
    expect(body).toHaveLength(20_000);
    expect(body.startsWith('c4ca4238a0b923820dcc509a6f75849b')).toBe(true); // md5('1')
    const [titleOnly, bodyToo] = messagesOf(captured, 'update');
    expect(titleOnly?.newTuple).toEqual(['1', 'final', UNCHANGED_TOAST]);
    expect(bodyToo?.newTuple).toEqual(['1', 'final', 'short']);
    expect(rows(assemble(captured))).toEqual([
      {
        op: 'c',
        table: 'docs',
        key: { id: 1 },
        before: null,
        after: { id: 1, title: 'draft', body },
        unchanged: [],
      },
      {
        op: 'u',
        table: 'docs',
        key: { id: 1 },
        before: { id: 1 },
        after: { id: 1, title: 'final' },
        unchanged: ['body'],
      },
      {
        op: 'u',
        table: 'docs',
        key: { id: 1 },
        before: { id: 1 },
        after: { id: 1, title: 'final', body: 'short' },
        unchanged: [],
      },
      { op: 'd', table: 'docs', key: { id: 1 }, before: { id: 1 }, after: null, unchanged: [] },
    ]);
  });

  it("decodes REPLICA IDENTITY FULL: every column flagged as key, whole old rows ('O') on update and delete", () => {
    const captured = load('identity-full');
    const relation = relationNamed(captured, 'full_rows');
    expect(relation.replicaIdentity).toBe('full');
    expect(relation.columns.map((column) => column.isKey)).toEqual([true, true]);
    const updates = messagesOf(captured, 'update');
    expect(updates.map(({ keyTuple, oldTuple, newTuple }) => ({ keyTuple, oldTuple, newTuple }))).toEqual([
      { keyTuple: null, oldTuple: ['1', 'a'], newTuple: ['1', 'b'] },
      { keyTuple: null, oldTuple: ['1', 'b'], newTuple: ['2', 'b'] },
    ]);
    expect(messagesOf(captured, 'delete')).toEqual([
      { tag: 'delete', relationOid: relation.relationOid, keyTuple: null, oldTuple: ['2', 'b'] },
    ]);
    // The primary key, not "every column", is the event key; a changed key takes the new value.
    expect(rows(assemble(captured))).toEqual([
      { op: 'c', table: 'full_rows', key: { id: 1 }, before: null, after: { id: 1, v: 'a' }, unchanged: [] },
      {
        op: 'u',
        table: 'full_rows',
        key: { id: 1 },
        before: { id: 1, v: 'a' },
        after: { id: 1, v: 'b' },
        unchanged: [],
      },
      {
        op: 'u',
        table: 'full_rows',
        key: { id: 2 },
        before: { id: 1, v: 'b' },
        after: { id: 2, v: 'b' },
        unchanged: [],
      },
      { op: 'd', table: 'full_rows', key: { id: 2 }, before: { id: 2, v: 'b' }, after: null, unchanged: [] },
    ]);
  });

  it("fills an unchanged TOASTed column ('u') from the whole old row under REPLICA IDENTITY FULL", () => {
    const captured = load('toast-full');
    const [update] = messagesOf(captured, 'update');
    const body = update?.oldTuple?.[2] as string;
    expect(body).toHaveLength(20_000);
    expect(update?.oldTuple).toEqual(['1', 'draft', body]);
    expect(update?.newTuple).toEqual(['1', 'final', UNCHANGED_TOAST]);
    expect(rows(assemble(captured))).toEqual([
      {
        op: 'c',
        table: 'full_docs',
        key: { id: 1 },
        before: null,
        after: { id: 1, title: 'draft', body },
        unchanged: [],
      },
      {
        op: 'u',
        table: 'full_docs',
        key: { id: 1 },
        before: { id: 1, title: 'draft', body },
        after: { id: 1, title: 'final', body },
        unchanged: [],
      },
    ]);
  });

  it("decodes REPLICA IDENTITY USING INDEX: the index columns flagged, the old key ('K') only when it changed", () => {
    const captured = load('identity-index');
    const relation = relationNamed(captured, 'codes');
    expect(relation.replicaIdentity).toBe('index');
    expect(relation.columns.map(({ name, isKey }) => [name, isKey])).toEqual([
      ['code', true],
      ['label', false],
    ]);
    expect(
      messagesOf(captured, 'update').map(({ keyTuple, oldTuple, newTuple }) => ({
        keyTuple,
        oldTuple,
        newTuple,
      })),
    ).toEqual([
      { keyTuple: ['a', null], oldTuple: null, newTuple: ['b', 'first'] },
      { keyTuple: null, oldTuple: null, newTuple: ['b', 'second'] },
    ]);
    expect(rows(assemble(captured))).toEqual([
      {
        op: 'c',
        table: 'codes',
        key: { code: 'a' },
        before: null,
        after: { code: 'a', label: 'first' },
        unchanged: [],
      },
      {
        op: 'u',
        table: 'codes',
        key: { code: 'b' },
        before: { code: 'a' },
        after: { code: 'b', label: 'first' },
        unchanged: [],
      },
      {
        op: 'u',
        table: 'codes',
        key: { code: 'b' },
        before: { code: 'b' },
        after: { code: 'b', label: 'second' },
        unchanged: [],
      },
      { op: 'd', table: 'codes', key: { code: 'b' }, before: { code: 'b' }, after: null, unchanged: [] },
    ]);
  });

  it('decodes truncates: CASCADE and RESTART IDENTITY flags, every relation, one event per table', () => {
    const captured = load('truncate');
    const oid = (table: string) => relationNamed(captured, table).relationOid;
    expect(messagesOf(captured, 'truncate')).toEqual([
      // TRUNCATE parent RESTART IDENTITY CASCADE: the cascaded child is in the same message.
      { tag: 'truncate', relationOids: [oid('parent'), oid('child')], cascade: true, restartIdentity: true },
      {
        tag: 'truncate',
        relationOids: [oid('docs'), oid('full_rows')],
        cascade: false,
        restartIdentity: false,
      },
      { tag: 'truncate', relationOids: [oid('child')], cascade: false, restartIdentity: false },
      { tag: 'truncate', relationOids: [oid('child'), oid('parent')], cascade: false, restartIdentity: true },
    ]);
    const truncates = assemble(captured).filter((event) => event.op === 't');
    expect(rows(truncates).map(({ table, key, before, after }) => [table, key, before, after])).toEqual(
      ['parent', 'child', 'docs', 'full_rows', 'child', 'child', 'parent'].map((table) => [
        table,
        null,
        null,
        null,
      ]),
    );
    // One transaction, one commit LSN for the tables truncated together.
    expect(truncates[0]?.source.lsn).toBe(truncates[1]?.source.lsn);
    expect(truncates[1]?.source.lsn).not.toBe(truncates[2]?.source.lsn);
  });

  it('decodes the origin message and carries the origin and its commit timestamp into the events', () => {
    const captured = load('origin');
    expect(messagesOf(captured, 'origin')).toEqual([
      { tag: 'origin', originLsn: 0xabn, name: 'fixtures_origin' },
    ]);
    const [event] = assemble(captured);
    expect(event?.source).toMatchObject({ origin: 'fixtures_origin', commitTs: '2020-01-02T03:04:05.678Z' });
    expect(event?.after).toEqual({ id: 7, v: 'from elsewhere' });
  });

  it('decodes logical messages (transactional or not) and assembles no event from them', () => {
    const captured = load('message');
    const [outside, inside] = messagesOf(captured, 'message');
    expect(outside).toMatchObject({ transactional: false, prefix: 'walpurge' });
    expect(outside?.content).toEqual(Buffer.from([0x00, 0xff]));
    expect(formatLsn(outside?.lsn ?? 0n)).toBe(captured[0]?.lsn);
    expect(inside).toMatchObject({ transactional: true, prefix: 'walpurge' });
    expect(inside?.content.toString()).toBe('in a transaction');
    expect(rows(assemble(captured))).toEqual([
      { op: 'c', table: 'full_rows', key: { id: 8 }, before: null, after: { id: 8, v: 'x' }, unchanged: [] },
    ]);
  });
});

/** Builds pgoutput bytes by hand, for what the listener never asks PostgreSQL for. */
const bytes = {
  u8: (value: number) => Buffer.from([value]),
  u32: (value: number) => {
    const out = Buffer.alloc(4);
    out.writeUInt32BE(value);
    return out;
  },
  i16: (value: number) => {
    const out = Buffer.alloc(2);
    out.writeInt16BE(value);
    return out;
  },
  tag: (char: string) => Buffer.from(char, 'latin1'),
  text: (value: string) =>
    Buffer.concat([bytes.tag('t'), bytes.u32(Buffer.byteLength(value)), Buffer.from(value)]),
};

describe('pgoutput decoder on hand-built bytes', () => {
  it('refuses streaming and two-phase messages (protocol 2+) by name instead of misreading them', () => {
    for (const tag of ['S', 'E', 'c', 'A', 'b', 'P', 'K', 'r', 'p']) {
      expect(() => decodePgoutput(Buffer.concat([bytes.tag(tag), bytes.u32(1)]))).toThrow(
        `unknown message type '${tag}' (only protocol version 1 is supported)`,
      );
    }
  });

  it('refuses binary tuple data, unknown tuple kinds and truncated messages as non-retriable', () => {
    const insert = (...columns: Buffer[]) =>
      Buffer.concat([
        bytes.tag('I'),
        bytes.u32(16384),
        bytes.tag('N'),
        bytes.i16(columns.length),
        ...columns,
      ]);
    expect(decodePgoutput(insert(bytes.text('é'), bytes.tag('n'), bytes.tag('u')))).toEqual({
      tag: 'insert',
      relationOid: 16384,
      newTuple: ['é', null, UNCHANGED_TOAST],
    });
    expect(() => decodePgoutput(insert(Buffer.concat([bytes.tag('b'), bytes.u32(1), bytes.u8(1)])))).toThrow(
      'binary tuple data',
    );
    expect(() => decodePgoutput(insert(bytes.tag('x')))).toThrow('unknown tuple data kind 120');
    // A negative length must not read backwards into the message and yield a made-up value.
    expect(() =>
      decodePgoutput(insert(Buffer.concat([bytes.tag('t'), bytes.u32(0xffffffff), bytes.u8(0x41)]))),
    ).toThrow('malformed pgoutput message');
    const whole = insert(bytes.text('abc'));
    for (const cut of [1, 5, whole.length - 1]) {
      let error: unknown;
      try {
        decodePgoutput(whole.subarray(0, cut));
      } catch (caught) {
        error = caught;
      }
      expect(error, `cut at ${cut}`).toMatchObject({ retriable: false });
      expect(String(error), `cut at ${cut}`).toMatch(/malformed pgoutput message/);
    }
  });

  it("refuses an update without its new tuple and a delete without an old one ('N' only follows)", () => {
    const tuple = Buffer.concat([bytes.i16(1), bytes.text('1')]);
    const update = (...parts: Buffer[]) => Buffer.concat([bytes.tag('U'), bytes.u32(16384), ...parts]);
    expect(decodePgoutput(update(bytes.tag('O'), tuple, bytes.tag('N'), tuple))).toMatchObject({
      oldTuple: ['1'],
      keyTuple: null,
      newTuple: ['1'],
    });
    expect(() => decodePgoutput(update(bytes.tag('K'), tuple, bytes.tag('K'), tuple))).toThrow(
      "update without new tuple (got 'K')",
    );
    expect(() =>
      decodePgoutput(Buffer.concat([bytes.tag('D'), bytes.u32(16384), bytes.tag('N'), tuple])),
    ).toThrow("delete with tuple marker 'N'");
  });
});
