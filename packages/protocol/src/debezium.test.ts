import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decodeAnyChangeEvent, UndecodableEventError } from './index.js';

const fixture = (name: string): Buffer => readFileSync(new URL(`./__fixtures__/${name}`, import.meta.url));

describe('decodeAnyChangeEvent: Debezium', () => {
  it('decodes an update with the schema/payload wrapper, and the key with its wrapper', () => {
    const event = decodeAnyChangeEvent(
      fixture('debezium-update-with-schema.json'),
      fixture('debezium-key-with-schema.json'),
    );
    expect(event).toEqual({
      v: 1,
      op: 'u',
      source: {
        db: 'app',
        schema: 'public',
        table: 'users',
        lsn: '0/16E9090',
        xid: 731,
        commitTs: '2025-11-22T14:00:00.123Z',
        origin: null,
        // Debezium's lsn is the change's own, not its commit's: it cannot order namespace bumps.
        lsnIsCommit: false,
      },
      key: { id: 42 },
      before: { id: 42, email: 'old@example.com', name: 'Ada' },
      after: { id: 42, email: 'new@example.com', name: 'Ada' },
      unchanged: [],
    });
  });

  it('decodes an insert without the wrapper; no key given → key null', () => {
    const event = decodeAnyChangeEvent(fixture('debezium-insert-no-schema.json'));
    expect(event).toMatchObject({
      op: 'c',
      key: null,
      before: null,
      after: { id: 7, email: 'x@example.com', name: null, balance: '12.50' },
    });
    expect(event?.source.lsn).toBe('0/16E9104');
  });

  it('turns a snapshot read into an insert', () => {
    expect(decodeAnyChangeEvent(fixture('debezium-snapshot-read.json'))).toMatchObject({
      op: 'c',
      after: { id: 1 },
    });
  });

  it('decodes a delete; with the key known, REPLICA IDENTITY DEFAULT nulls become unknown columns', () => {
    const withKey = decodeAnyChangeEvent(fixture('debezium-delete-default-identity.json'), '{"id":42}');
    expect(withKey).toMatchObject({ op: 'd', key: { id: 42 }, before: { id: 42 }, after: null });
    expect(withKey?.source.lsn).toBe('3E8/0');
    const withoutKey = decodeAnyChangeEvent(fixture('debezium-delete-default-identity.json'));
    expect(withoutKey?.before).toEqual({ id: 42, email: null, name: null });
  });

  it('decodes a truncate of a non-public schema', () => {
    const event = decodeAnyChangeEvent(fixture('debezium-truncate.json'), '{"id":1}');
    expect(event).toMatchObject({
      op: 't',
      key: null,
      before: null,
      after: null,
      source: { schema: 'billing', table: 'invoices' },
    });
  });

  it('maps unavailable-value placeholders (text, base64 bytea, array) to `unchanged`', () => {
    const event = decodeAnyChangeEvent(fixture('debezium-update-toast.json'));
    expect(event?.after).toEqual({ id: 5, title: 'new title' });
    expect(event?.unchanged).toEqual(['body', 'attachment', 'labels']);
  });

  it('skips tombstones and logical-decoding messages', () => {
    expect(decodeAnyChangeEvent(null)).toBeNull();
    expect(decodeAnyChangeEvent('{"schema":null,"payload":null}')).toBeNull();
    expect(decodeAnyChangeEvent(fixture('debezium-message.json'))).toBeNull();
  });

  it('rejects malformed Debezium events with a reason', () => {
    const broken = JSON.parse(fixture('debezium-insert-no-schema.json').toString()) as {
      source: Record<string, unknown>;
    };
    delete broken.source['lsn'];
    expect(() => decodeAnyChangeEvent(JSON.stringify(broken))).toThrow(
      /not a Debezium PostgreSQL change event: source\.lsn/,
    );
    const noAfter = JSON.parse(fixture('debezium-insert-no-schema.json').toString()) as Record<
      string,
      unknown
    >;
    noAfter['after'] = null;
    expect(() => decodeAnyChangeEvent(JSON.stringify(noAfter))).toThrow(/needs an 'after' row/);
  });
});

describe('decodeAnyChangeEvent: protocol v1 and garbage', () => {
  it('decodes v1', () => {
    expect(decodeAnyChangeEvent(fixture('walpurge-v1-update.json'))).toMatchObject({
      op: 'u',
      unchanged: ['bio'],
      source: { lsn: '0/16B3748' },
    });
  });

  it.each([
    ['not json', 'not JSON'],
    ['{"v":2,"op":"c"}', 'not a walpurge v1 change event'],
    ['{"hello":"world"}', 'neither a walpurge v1 change event nor a Debezium change event'],
    ['[1,2]', 'neither'],
    ['42', 'neither'],
  ])('rejects %j', (text, message) => {
    expect(() => decodeAnyChangeEvent(text)).toThrow(UndecodableEventError);
    expect(() => decodeAnyChangeEvent(text)).toThrow(message);
  });
});
