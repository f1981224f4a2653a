import { describe, expect, it } from 'vitest';
import { ErrorCode, type WalpurgeError } from '@walpurge/core';
import { KAFKA_BATCH_OVERHEAD, decodeChangeEventV1, type ChangeEvent } from '@walpurge/protocol';
import { OMITTED_HEADER, fitMessage } from './message-size.js';

function event(row: Record<string, unknown>, key: Record<string, unknown> = { id: 1 }): ChangeEvent {
  return {
    v: 1,
    op: 'u',
    source: {
      db: 'app',
      schema: 'public',
      table: 'docs',
      lsn: '0/16B3748',
      xid: 7,
      commitTs: '2026-11-22T14:00:00.000Z',
      origin: null,
    },
    key,
    before: { ...key, ...row },
    after: { ...key, ...row, title: 'new' },
    unchanged: [],
  };
}

describe('fitMessage (events bigger than one Kafka message)', () => {
  it('leaves an event that fits alone and counts key, value, headers and framing', () => {
    const small = event({ title: 'old' });
    const { message, bytes, omitted } = fitMessage(small, 1_000_000);
    expect(omitted).toEqual([]);
    expect(message.headers).toEqual({ table: 'public.docs', op: 'u', lsn: '0/16B3748' });
    expect(bytes).toBeGreaterThan((message.value as Buffer).length + String(message.key).length);
    expect(decodeChangeEventV1(message.value as Buffer)).toEqual(small);
  });

  it('drops the largest non-key columns from before and after until it fits, naming them in a header', () => {
    const big = event({ body: 'b'.repeat(600_000), summary: 's'.repeat(300_000), title: 'old' });
    const { message, bytes, omitted } = fitMessage(big, 1_000_000);
    expect(omitted).toEqual(['body']);
    expect(bytes).toBeLessThanOrEqual(1_000_000);
    expect(message.headers?.[OMITTED_HEADER]).toBe('body');
    const sent = decodeChangeEventV1(message.value as Buffer);
    expect(sent.key).toEqual({ id: 1 });
    expect(sent.after).toEqual({ id: 1, summary: 's'.repeat(300_000), title: 'new' });
    expect(sent.before).not.toHaveProperty('body');
    expect(sent.unchanged).toEqual([]); // not "unchanged": consumers must treat it as unknown

    const both = fitMessage(big, 200_000);
    expect(both.omitted).toEqual(['body', 'summary']);
    expect(decodeChangeEventV1(both.message.value as Buffer).after).toEqual({ id: 1, title: 'new' });
  });

  it('refuses, non-retriably and with a hint, an event whose key alone is too big', () => {
    let error: WalpurgeError | undefined;
    try {
      fitMessage(event({ title: 'x' }, { id: 'k'.repeat(3000) }), 1000);
    } catch (thrown) {
      error = thrown as WalpurgeError;
    }
    expect(error?.code).toBe(ErrorCode.EventInvalid);
    expect(error?.retriable).toBe(false);
    expect(error?.hint).toContain('max.message.bytes');
  });

  it('counts the trace headers against maxBytes: an event that fits only without them loses columns', () => {
    const doc = event({ body: 'b'.repeat(5_000), title: 'old' });
    const maxBytes = fitMessage(doc, 1_000_000).bytes + KAFKA_BATCH_OVERHEAD;
    expect(fitMessage(doc, maxBytes).omitted).toEqual([]);
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const traced = fitMessage(doc, maxBytes, { traceparent });
    expect(traced.omitted).toEqual(['body']);
    expect(traced.message.headers?.['traceparent']).toBe(traceparent);
    expect(traced.bytes + KAFKA_BATCH_OVERHEAD).toBeLessThanOrEqual(maxBytes);
  });

  it('names the configured maxBytes when the key does not fit beside the trace headers', () => {
    expect(() =>
      fitMessage(event({ title: 'x' }, { id: 'k'.repeat(3000) }), 1000, {
        traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      }),
    ).toThrow(/does not fit into a Kafka message of 1000 bytes \(\d+ of them for its trace headers\)/);
  });
});
