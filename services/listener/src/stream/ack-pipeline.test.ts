import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { ROOT_CONTEXT, SpanStatusCode, trace } from '@opentelemetry/api';
import { afterEach, describe, expect, it } from 'vitest';
import type { ChangeEvent, ChangeSink } from '@walpurge/protocol';
import { installInMemoryTracing, type InMemoryTracing } from '@walpurge/testing';
import { AckPipeline } from './ack-pipeline.js';

const event = { v: 1, op: 'c' } as unknown as ChangeEvent;

/** A sink whose calls finish when the test says so, in any order. */
function controlledSink() {
  const calls: Array<{ resolve(): void; reject(error: Error): void }> = [];
  const sink: ChangeSink = {
    publish: () => new Promise<void>((resolve, reject) => calls.push({ resolve, reject })),
  };
  return { sink, calls };
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('AckPipeline', () => {
  it('makes a commit durable only after it and every earlier chunk were acknowledged, whatever the finish order', async () => {
    const { sink, calls } = controlledSink();
    const durable: bigint[] = [];
    const pipeline = new AckPipeline({
      sink,
      maxConcurrent: 8,
      onDurable: (lsn) => durable.push(lsn),
      onFailure: () => {},
    });
    pipeline.push([event]); // chunk of transaction A
    pipeline.push([event], 100n); // last chunk of A
    pipeline.push([event], 200n); // transaction B
    expect(calls).toHaveLength(3);
    calls[2]?.resolve();
    calls[1]?.resolve();
    await tick();
    expect(durable).toEqual([]);
    calls[0]?.resolve();
    await tick();
    expect(durable).toEqual([100n, 200n]);
    expect(pipeline.pendingEvents).toBe(0);
  });

  it('counts the bytes of handed-over events until the sink acknowledges their chunk', async () => {
    const { sink, calls } = controlledSink();
    const pipeline = new AckPipeline({ sink, maxConcurrent: 8, onDurable: () => {}, onFailure: () => {} });
    pipeline.push([event, event], undefined, undefined, 300);
    pipeline.push([event], 100n, undefined, 200);
    pipeline.push([], 150n);
    expect(pipeline.pendingBytes).toBe(500);
    // Memory is released when a chunk is acknowledged, even while an earlier one is still in flight.
    calls[1]?.resolve();
    await tick();
    expect(pipeline.pendingBytes).toBe(300);
    calls[0]?.resolve();
    await tick();
    expect(pipeline.pendingBytes).toBe(0);
    expect(pipeline.pendingEvents).toBe(0);
  });

  it('stops at the end of the last acknowledged commit when the adjacent next one is not (yet) acknowledged', async () => {
    const { sink, calls } = controlledSink();
    const durable: bigint[] = [];
    const pipeline = new AckPipeline({
      sink,
      maxConcurrent: 8,
      onDurable: (lsn) => durable.push(lsn),
      onFailure: () => {},
    });
    pipeline.push([event], 100n); // commit A ends at 100
    pipeline.push([event], 180n); // commit B, right behind it
    pipeline.push([], 200n); // a keepalive position after B: not durable before B is
    calls[0]?.resolve();
    await tick();
    expect(durable).toEqual([100n]);
    calls[1]?.reject(new Error('broker lost'));
    await tick();
    expect(durable).toEqual([100n]);
  });

  it('passes idle markers only once everything before them is acknowledged', async () => {
    const { sink, calls } = controlledSink();
    const durable: bigint[] = [];
    const pipeline = new AckPipeline({
      sink,
      maxConcurrent: 1,
      onDurable: (lsn) => durable.push(lsn),
      onFailure: () => {},
    });
    pipeline.push([], 50n);
    expect(durable).toEqual([50n]);
    pipeline.push([event], 100n);
    pipeline.push([], 150n);
    expect(durable).toEqual([50n]);
    calls[0]?.resolve();
    await tick();
    expect(durable).toEqual([50n, 100n, 150n]);
  });

  it('calls a sink without ordering guarantee one call at a time', async () => {
    const { sink, calls } = controlledSink();
    const pipeline = new AckPipeline({ sink, maxConcurrent: 1, onDurable: () => {}, onFailure: () => {} });
    pipeline.push([event], 1n);
    pipeline.push([event], 2n);
    expect(calls).toHaveLength(1);
    calls[0]?.resolve();
    await tick();
    expect(calls).toHaveLength(2);
  });

  it('stops at the first failure: nothing after it is published or becomes durable', async () => {
    const { sink, calls } = controlledSink();
    const durable: bigint[] = [];
    const failures: unknown[] = [];
    const pipeline = new AckPipeline({
      sink,
      maxConcurrent: 2,
      onDurable: (lsn) => durable.push(lsn),
      onFailure: (e) => failures.push(e),
    });
    pipeline.push([event], 100n);
    pipeline.push([event], 200n);
    pipeline.push([event], 300n);
    calls[0]?.reject(new Error('kafka down'));
    calls[1]?.resolve();
    await tick();
    await pipeline.drained();
    expect(failures).toHaveLength(1);
    expect(durable).toEqual([]);
    expect(calls).toHaveLength(2);
    expect(pipeline.hasFailed).toBe(true);
  });

  it('lets go of acknowledged events at once, so a huge transaction does not pile up in memory', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const { sink, calls } = controlledSink();
    const pipeline = new AckPipeline({ sink, maxConcurrent: 1, onDurable: () => {}, onFailure: () => {} });
    // A few chunks of one transaction: far fewer than the compaction threshold.
    const pushChunk = (ackLsn?: bigint): WeakRef<object> => {
      const chunk = [{ ...event }];
      pipeline.push(chunk, ackLsn);
      return new WeakRef(chunk);
    };
    const refs = [pushChunk(), pushChunk(), pushChunk(10n)];
    for (let i = 0; i < 3; i += 1) {
      calls[i]?.resolve();
      await tick();
    }
    expect(pipeline.pendingEvents).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 0)); // WeakRefs hold their target until the job ends
    gc();
    expect(refs.map((ref) => ref.deref() === undefined)).toEqual([true, true, true]);
  });
});

describe('AckPipeline transaction spans', () => {
  let tracing: InMemoryTracing | undefined;
  afterEach(async () => {
    await tracing?.uninstall();
    tracing = undefined;
  });

  /** A transaction's last-chunk trace, its span named after it. */
  function transaction(name: string) {
    const span = trace.getTracer('test').startSpan(name);
    return { context: trace.setSpan(ROOT_CONTEXT, span), span };
  }
  const status = (name: string) => tracing?.spans().find((span) => span.name === name)?.status;

  it('ends a span once durable, fails the failed transaction and the later ones, not an earlier one still in flight', async () => {
    tracing = installInMemoryTracing();
    const { sink, calls } = controlledSink();
    const durable: bigint[] = [];
    const pipeline = new AckPipeline({
      sink,
      maxConcurrent: 8,
      onDurable: (lsn) => durable.push(lsn),
      onFailure: () => {},
    });
    pipeline.push([event], 100n, undefined, 0, transaction('A'));
    pipeline.push([event], 200n, undefined, 0, transaction('B'));
    pipeline.push([event], 300n, undefined, 0, transaction('C'));
    calls[1]?.reject(new Error('broker lost'));
    await tick();
    expect(status('B')).toEqual({ code: SpanStatusCode.ERROR, message: 'broker lost' });
    expect(status('C')?.code).toBe(SpanStatusCode.ERROR);
    expect(status('A')).toBeUndefined(); // still publishing, not ended
    calls[0]?.resolve();
    await tick();
    expect(durable).toEqual([100n]);
    expect(status('A')?.code).toBe(SpanStatusCode.UNSET);
    const failed = tracing.spans().find((span) => span.name === 'B');
    expect(failed?.events.map((e) => e.name)).toEqual(['exception']);
  });

  it('fails each span once, whatever order many calls fail in, across compactions', async () => {
    tracing = installInMemoryTracing();
    const { sink, calls } = controlledSink();
    const pipeline = new AckPipeline({ sink, maxConcurrent: 1000, onDurable: () => {}, onFailure: () => {} });
    for (let i = 0; i < 500; i += 1)
      pipeline.push([event], BigInt(i + 1), undefined, 0, transaction(`T${i}`));
    // The first 300 become durable: more than half, so the pipeline compacts its items (indexes shift).
    for (let i = 0; i < 300; i += 1) calls[i]?.resolve();
    await tick();
    calls[450]?.reject(new Error('later first'));
    await tick();
    calls[320]?.reject(new Error('earlier next'));
    for (let i = 499; i > 450; i -= 1) calls[i]?.reject(new Error('behind'));
    await tick();
    pipeline.abandonSpans('stopped');
    const spans = tracing.spans();
    expect(spans).toHaveLength(500);
    expect(new Set(spans.map((span) => span.name)).size).toBe(500);
    const code = (i: number) => status(`T${i}`)?.code;
    expect([0, 150, 299].map(code)).toEqual([
      SpanStatusCode.UNSET,
      SpanStatusCode.UNSET,
      SpanStatusCode.UNSET,
    ]);
    expect(status('T450')?.message).toBe('later first');
    expect(status('T320')?.message).toBe('earlier next');
    expect(status('T400')?.message).toBe('earlier next');
    expect(status('T499')?.message).toBe('later first');
    expect(status('T300')?.message).toBe('stopped');
  });

  it('ends the spans still open as failed when the session stops', async () => {
    tracing = installInMemoryTracing();
    const { sink, calls } = controlledSink();
    const pipeline = new AckPipeline({ sink, maxConcurrent: 8, onDurable: () => {}, onFailure: () => {} });
    pipeline.push([event], 100n, undefined, 0, transaction('A'));
    pipeline.push([event], 200n, undefined, 0, transaction('B'));
    calls[0]?.resolve();
    await tick();
    pipeline.abandonSpans('the replication session stopped before the commit was durable');
    expect(status('A')?.code).toBe(SpanStatusCode.UNSET);
    expect(status('B')).toEqual({
      code: SpanStatusCode.ERROR,
      message: 'the replication session stopped before the commit was durable',
    });
    expect(tracing.spans()).toHaveLength(2);
  });
});
