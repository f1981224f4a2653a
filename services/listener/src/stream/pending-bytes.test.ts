import { describe, expect, it } from 'vitest';
import { kafkaRecordBytes, type ChangeEvent } from '@walpurge/protocol';
import { toKafkaMessage } from '../kafka/message-size.js';
import { chunkByteLimit, decodedEventBytes, pendingEventBytes } from './pending-bytes.js';

const event = (after: Record<string, unknown>): ChangeEvent => ({
  v: 1,
  op: 'c',
  source: {
    db: 'app',
    schema: 'public',
    table: 'docs',
    lsn: '0/1',
    xid: 1,
    commitTs: '2026-01-01T00:00:00.000Z',
    origin: null,
  },
  key: { id: 1 },
  before: null,
  after: { id: 1, ...after },
  unchanged: [],
});

describe('pendingEventBytes', () => {
  it("is the event's Kafka record size, multibyte characters counted in bytes", () => {
    const big = event({ body: 'é'.repeat(100_000) });
    expect(pendingEventBytes(big)).toBe(kafkaRecordBytes(toKafkaMessage(big)));
    expect(pendingEventBytes(big)).toBeGreaterThan(200_000);
  });

  it('counts the traceparent header the sink adds when tracing is on', () => {
    const small = event({ body: 'x' });
    const traced = toKafkaMessage(small);
    traced.headers = {
      ...traced.headers,
      traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
    };
    expect(pendingEventBytes(small, true)).toBe(kafkaRecordBytes(traced));
    expect(pendingEventBytes(small, true)).toBeGreaterThan(pendingEventBytes(small) + 55);
  });

  it('falls back to an upper-bound estimate instead of throwing when the event cannot be encoded', () => {
    const unencodable = event({
      body: 'x'.repeat(1000),
      broken: {
        toJSON() {
          throw new RangeError('Invalid string length');
        },
      },
    });
    expect(pendingEventBytes(unencodable)).toBeGreaterThanOrEqual(3000);
  });

  it('flushes chunks at a quarter of the budget, at least every event', () => {
    expect(chunkByteLimit(64 * 1024 * 1024)).toBe(16 * 1024 * 1024);
    expect(chunkByteLimit(3)).toBe(1);
  });
});

describe('decodedEventBytes (sinks that never encode the event)', () => {
  it('is within 25% of the Kafka record for ASCII rows, and grows with them', () => {
    for (const after of [
      { name: 'ada', email: 'ada@example.com', score: 12.5 },
      { body: 'x'.repeat(100_000) },
      { doc: { tags: ['a', 'b'], nested: { depth: 2, on: true } } },
    ]) {
      const row = event(after);
      const record = pendingEventBytes(row);
      expect(Math.abs(decodedEventBytes(row) - record) / record).toBeLessThan(0.25);
    }
    expect(decodedEventBytes(event({ body: 'x'.repeat(100_000) }))).toBeGreaterThan(100_000);
  });

  it('counts strings as the heap holds them: Latin-1 at one byte per character, anything beyond at two', () => {
    const accented = event({ body: 'é'.repeat(100_000) });
    expect(decodedEventBytes(accented)).toBeGreaterThan(100_000);
    expect(decodedEventBytes(accented)).toBeLessThan(150_000);
    const cyrillic = event({ body: 'ж'.repeat(100_000) });
    expect(decodedEventBytes(cyrillic)).toBeGreaterThan(200_000);
  });

  it('never throws: a json value nested deeper than the stack counts as a large event', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 200_000; i += 1) deep = [deep];
    expect(decodedEventBytes(event({ doc: deep }))).toBeGreaterThanOrEqual(1024 * 1024);
  });
});
