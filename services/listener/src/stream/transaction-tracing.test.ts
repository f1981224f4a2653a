import { SpanStatusCode, trace } from '@opentelemetry/api';
import { afterEach, describe, expect, it } from 'vitest';
import type { ChangeEvent } from '@walpurge/protocol';
import { installInMemoryTracing, type InMemoryTracing } from '@walpurge/testing';
import { TransactionAttributes, TransactionTracing } from './transaction-tracing.js';

let tracing: InMemoryTracing | undefined;

const milliseconds = ([seconds, nanos]: readonly [number, number]): number => seconds * 1000 + nanos / 1e6;

afterEach(async () => {
  await tracing?.uninstall();
  tracing = undefined;
});

const event = { source: { schema: 'public', table: 'items' } } as unknown as ChangeEvent;

function transactions(): TransactionTracing {
  tracing = installInMemoryTracing();
  return new TransactionTracing(trace.getTracer('test'), 'app');
}

describe('TransactionTracing', () => {
  it('builds no span for a transaction without changes (PostgreSQL 13/14 send those too)', () => {
    const tracker = transactions();
    for (let xid = 1; xid <= 3; xid += 1) {
      tracker.begin(xid, '0/1', Date.now());
      expect(tracker.chunk(true)).toBeUndefined();
    }
    tracker.begin(4, '0/2', Date.now());
    tracker.abandon('session ended');
    expect(tracing?.spans()).toEqual([]);
  });

  it("starts a transaction's span at its begin message, with its attributes once it has a change", () => {
    const tracker = transactions();
    const begunAt = Date.now();
    tracker.begin(7, '0/16B3748', 1_700_000_000_000);
    tracker.changed([]);
    tracker.changed([event, event]);
    const chunk = tracker.chunk(true);
    expect(chunk?.span).toBeDefined();
    chunk?.span?.end();
    const [span] = tracing?.spans() ?? [];
    expect(span?.name).toBe('walpurge.transaction');
    expect(milliseconds(span!.startTime)).toBeGreaterThanOrEqual(begunAt);
    expect(milliseconds(span!.startTime)).toBeLessThanOrEqual(milliseconds(span!.endTime));
    expect(span?.attributes).toMatchObject({
      [TransactionAttributes.xid]: 7,
      [TransactionAttributes.commitLsn]: '0/16B3748',
      [TransactionAttributes.changes]: 2,
      [TransactionAttributes.tables]: ['public.items'],
    });
    expect(span?.status.code).toBe(SpanStatusCode.UNSET);
  });
});
