import { describe, expect, it } from 'vitest';
import { encodeChangeEvent, messageKey, type ChangeEvent } from './change-event.js';
import { decodeChangeEventV1, UndecodableEventError } from './decode.js';
import { compareLsn, formatLsn, parseLsn } from './lsn.js';

const event: ChangeEvent = {
  v: 1,
  op: 'u',
  source: {
    db: 'app',
    schema: 'public',
    table: 'users',
    lsn: '0/16B3748',
    xid: 731,
    commitTs: '2026-11-22T14:00:00.123Z',
    origin: null,
  },
  key: { id: 42 },
  before: { id: 42, email: 'old@x' },
  after: { id: 42, email: 'new@x' },
  unchanged: ['bio'],
};

describe('LSN', () => {
  it('round-trips and orders numerically, not lexically', () => {
    expect(formatLsn(parseLsn('16/B374D848'))).toBe('16/B374D848');
    expect(parseLsn('1/0') - parseLsn('0/FFFFFFFF')).toBe(1n);
    expect(compareLsn('0/9', '0/10')).toBe(-1);
    expect(() => parseLsn('16B374D848')).toThrow('not a PostgreSQL LSN');
  });
});

describe('change event v1', () => {
  it('round-trips through the wire encoding', () => {
    expect(decodeChangeEventV1(encodeChangeEvent(event))).toEqual(event);
  });

  it('keys Kafka messages by table and primary key with stable column order', () => {
    expect(messageKey(event)).toBe('public.users:{"id":42}');
    const composite = { ...event, key: { b: 2, a: 'x' } };
    expect(messageKey(composite)).toBe('public.users:{"a":"x","b":2}');
    expect(messageKey({ ...event, key: null })).toBe('public.users');
  });

  it.each([
    ['not json', 'not JSON'],
    [JSON.stringify({ ...event, v: 2 }), 'v: Invalid input: expected 1'],
    [JSON.stringify({ ...event, op: 'c', after: null }), "after: op 'c' needs an 'after' row"],
    [
      JSON.stringify({ ...event, source: { ...event.source, lsn: 'nope' } }),
      'source.lsn: must be a PostgreSQL LSN',
    ],
  ])('rejects %s with a reason', (payload, reason) => {
    let caught: unknown;
    try {
      decodeChangeEventV1(payload);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(UndecodableEventError);
    expect((caught as Error).message).toContain(reason);
    expect((caught as UndecodableEventError).retriable).toBe(false);
  });
});
