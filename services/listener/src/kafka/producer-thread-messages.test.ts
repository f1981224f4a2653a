import { describe, expect, it } from 'vitest';
import { ErrorCode, WalpurgeError } from '@walpurge/core';
import { deserializeError, packRecords, serializeError, unpackRecords } from './producer-thread-messages.js';

describe('records crossing to the producer thread', () => {
  it('arrive as they were sent: keys, values, headers and timestamps, in order', () => {
    const messages = [
      { key: 'public.docs:{"id":1}', value: Buffer.from('{"a":1}'), headers: { op: 'c' }, timestamp: '1' },
      { key: 'public.docs:{"id":2}', value: '{"b":"é"}', headers: { op: 'u', lsn: '0/1' }, timestamp: '2' },
      { key: 'public.docs', value: Buffer.alloc(0), headers: {}, timestamp: '3' },
    ];
    const { records } = packRecords(messages);
    const unpacked = unpackRecords(structuredClone(records));
    expect(unpacked.map((m) => [m.key, (m.value as Buffer).toString(), m.headers, m.timestamp])).toEqual([
      ['public.docs:{"id":1}', '{"a":1}', { op: 'c' }, '1'],
      ['public.docs:{"id":2}', '{"b":"é"}', { op: 'u', lsn: '0/1' }, '2'],
      ['public.docs', '', {}, '3'],
    ]);
  });

  it('transfer one buffer of their own, never a pooled Buffer shared with other values', () => {
    // Small Buffers share Node's 8 KiB pool: transferring that pool would detach every one of them.
    const pooled = Buffer.from('{"x":1}');
    const neighbour = Buffer.from('{"y":2}');
    expect(pooled.buffer).toBe(neighbour.buffer);
    const { records, transfer } = packRecords([{ key: 'k', value: pooled, headers: {}, timestamp: '1' }]);
    expect(transfer).toContain(records.values);
    expect(records.values).not.toBe(pooled.buffer);
    expect(records.values.byteLength).toBe(pooled.length);
    structuredClone(records, { transfer });
    expect(neighbour.toString()).toBe('{"y":2}');
    expect(pooled.toString()).toBe('{"x":1}');
  });

  it('refuses a record without a key instead of sending it somewhere', () => {
    expect(() => packRecords([{ key: null, value: Buffer.from('{}'), timestamp: '1' }])).toThrow(
      WalpurgeError,
    );
  });
});

describe('errors crossing back from the producer thread', () => {
  it('keep a WalpurgeError’s code, retriability and hint (a TLS refusal must stay fatal)', () => {
    const original = new WalpurgeError(ErrorCode.KafkaSecurity, 'certificate refused', {
      retriable: false,
      hint: 'check kafka.ssl.ca',
    });
    const error = deserializeError(structuredClone(serializeError(original)));
    expect(error).toBeInstanceOf(WalpurgeError);
    expect(error).toMatchObject({
      code: ErrorCode.KafkaSecurity,
      retriable: false,
      hint: 'check kafka.ssl.ca',
    });
    expect(error.message).toBe('certificate refused');
  });

  it('keep the name, message and retriable flag of a kafkajs error', () => {
    const original = Object.assign(new Error('This server is not the leader'), { retriable: true });
    original.name = 'KafkaJSProtocolError';
    const error = deserializeError(structuredClone(serializeError(original)));
    expect(error.name).toBe('KafkaJSProtocolError');
    expect(error.message).toBe('This server is not the leader');
    expect((error as { retriable?: boolean }).retriable).toBe(true);
  });
});
