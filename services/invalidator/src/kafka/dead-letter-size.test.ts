import { describe, expect, it } from 'vitest';
import { decodeAnyChangeEvent } from '@walpurge/protocol';
import { deadLetterHeaders } from './dead-letter-headers.js';
import {
  deadLetterCandidates,
  isTooLargeError,
  recordBatchBytes,
  type DeadLetterOriginal,
} from './dead-letter-size.js';

function original(valueBytes: number, keyBytes = 10): DeadLetterOriginal {
  const error = 'not JSON: '.padEnd(1_500, 'x');
  return {
    key: Buffer.alloc(keyBytes, 'k'),
    value: Buffer.alloc(valueBytes, 'v'),
    headers: { table: 'public.users' },
    errorHeaders: {
      [deadLetterHeaders.error]: error,
      [deadLetterHeaders.reason]: 'undecodable',
      [deadLetterHeaders.offset]: '7',
    },
    error,
    source: { topic: 'changes', partition: 2, offset: '7' },
    reason: 'undecodable',
  };
}

describe('dead-letter candidates', () => {
  it('keeps the original first, then replaces the value by a stub, then drops key and headers too', () => {
    const [full, withoutValue, minimal] = deadLetterCandidates(original(50_000, 3_000), 4_096);
    expect(full?.truncated).toEqual([]);
    expect(full?.message.value).toEqual(Buffer.alloc(50_000, 'v'));
    expect(full?.message.headers?.['table']).toBe('public.users');
    expect(full?.bytes).toBeGreaterThan(50_000 + 3_000 + 1_500);

    expect(withoutValue?.truncated).toEqual(['value']);
    expect(withoutValue?.message.key).toEqual(Buffer.alloc(3_000, 'k'));
    expect(withoutValue?.message.headers).toMatchObject({
      table: 'public.users',
      [deadLetterHeaders.truncated]: 'value',
      [deadLetterHeaders.originalBytes]: '50000',
      [deadLetterHeaders.offset]: '7',
    });
    const stub: unknown = JSON.parse(String(withoutValue?.message.value));
    expect(stub).toMatchObject({
      walpurgeDeadLetter: 'truncated',
      truncated: ['value'],
      reason: 'undecodable',
      source: { topic: 'changes', partition: 2, offset: '7' },
      originalBytes: { key: 3_000, value: 50_000 },
      limitBytes: 4_096,
      valueHead: 'v'.repeat(256),
    });

    // A stub redriven to the change topic is dead-lettered again, never mistaken for an event or skipped.
    expect(() => decodeAnyChangeEvent(withoutValue?.message.value as Buffer)).toThrow(
      /neither a walpurge v1/,
    );

    expect(minimal?.truncated).toEqual(['value', 'key', 'headers']);
    expect(minimal?.message.key).toBeNull();
    expect(minimal?.message.headers?.['table']).toBeUndefined();
    expect(minimal?.message.headers?.[deadLetterHeaders.error]).toHaveLength(200);
    expect(minimal?.message.headers?.[deadLetterHeaders.truncated]).toBe('value,key,headers');
    expect(minimal?.bytes).toBeLessThan(1_024);
    expect(
      (withoutValue?.bytes ?? 0) < (full?.bytes ?? 0) && (minimal?.bytes ?? 0) < (withoutValue?.bytes ?? 0),
    ).toBe(true);
  });

  it('estimates a record batch at least as large as its content', () => {
    const message = {
      key: 'k',
      value: Buffer.alloc(100),
      headers: { a: 'bb', c: [Buffer.from('dd'), 'ee'] },
    };
    expect(recordBatchBytes(message)).toBeGreaterThanOrEqual(61 + 1 + 100 + 1 + 2 + 1 + 2 + 1 + 2);
    expect(recordBatchBytes({ key: null, value: null })).toBe(101);
  });
});

describe('isTooLargeError', () => {
  it("recognises kafkajs's MESSAGE_TOO_LARGE / RECORD_LIST_TOO_LARGE, also wrapped", () => {
    const protocol = Object.assign(new Error('too large'), {
      name: 'KafkaJSProtocolError',
      type: 'MESSAGE_TOO_LARGE',
      code: 10,
    });
    const wrapped = Object.assign(new Error('too large'), {
      name: 'KafkaJSNonRetriableError',
      cause: protocol,
    });
    const list = Object.assign(new Error('batch'), { type: 'RECORD_LIST_TOO_LARGE' });
    expect(isTooLargeError(protocol)).toBe(true);
    expect(isTooLargeError(wrapped)).toBe(true);
    expect(isTooLargeError(list)).toBe(true);
    expect(isTooLargeError(Object.assign(new Error('x'), { type: 'NOT_LEADER_FOR_PARTITION' }))).toBe(false);
    expect(isTooLargeError(new Error('MESSAGE_TOO_LARGE'))).toBe(false);
    expect(isTooLargeError(undefined)).toBe(false);
  });
});
