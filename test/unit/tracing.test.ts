import { ROOT_CONTEXT, SpanStatusCode, context, trace } from '@opentelemetry/api';
import { afterEach, describe, expect, it } from 'vitest';
import { activeTracer, inSpan, recordSpanError } from '@walpurge/core';
import { spanContextOfHeaders, traceHeaders, type ChangeEvent } from '@walpurge/protocol';
import { installInMemoryTracing, type InMemoryTracing } from '@walpurge/testing';
import {
  MAX_BATCH_LINKS,
  batchLinks,
  rememberOrigin,
} from '../../services/invalidator/src/tracing/batch-links.js';

/** The tracing functions the services share: whether to trace at all, spans around work, links. */
let tracing: InMemoryTracing | undefined;

afterEach(async () => {
  await tracing?.uninstall();
  tracing = undefined;
});

function event(id: number): ChangeEvent {
  return {
    v: 1,
    op: 'u',
    source: {
      db: 'app',
      schema: 'public',
      table: 'users',
      lsn: '0/16B3748',
      xid: 7,
      commitTs: '2026-11-22T14:00:00.123Z',
      origin: null,
    },
    key: { id },
    before: { id },
    after: { id },
    unchanged: [],
  };
}

describe('activeTracer', () => {
  it('is undefined until a tracer provider is installed, and again after it is removed', async () => {
    expect(activeTracer('test')).toBeUndefined();
    tracing = installInMemoryTracing();
    expect(activeTracer('test')).toBeDefined();
    await tracing.uninstall();
    tracing = undefined;
    expect(activeTracer('test')).toBeUndefined();
  });
});

describe('inSpan', () => {
  it('runs the work alone without a tracer', async () => {
    expect(await inSpan(undefined, 'walpurge.test', {}, async (span) => span)).toBeUndefined();
  });

  it('makes the span the parent of spans inside the work, and marks it failed when the work rejects', async () => {
    tracing = installInMemoryTracing();
    const tracer = activeTracer('test');
    await expect(
      inSpan(tracer, 'walpurge.outer', { attributes: { 'walpurge.count': 2 } }, async () => {
        await inSpan(tracer, 'walpurge.inner', {}, async () => undefined);
        throw new Error('purge refused: WRONGTYPE');
      }),
    ).rejects.toThrow('purge refused: WRONGTYPE');
    const [inner, outer] = tracing.spans();
    expect(inner?.name).toBe('walpurge.inner');
    expect(inner?.status.code).toBe(SpanStatusCode.UNSET);
    expect(inner?.parentSpanContext?.spanId).toBe(outer?.spanContext().spanId);
    expect(outer?.status).toEqual({ code: SpanStatusCode.ERROR, message: 'purge refused: WRONGTYPE' });
    expect(outer?.events.map((e) => e.name)).toEqual(['exception']);
    expect(outer?.attributes['walpurge.count']).toBe(2);
  });
});

describe('recordSpanError', () => {
  it('scrubs passwords and tokens from the status message, the exception message and the stack', () => {
    tracing = installInMemoryTracing();
    const span = activeTracer('test')!.startSpan('walpurge.redis.keys');
    const error = new TypeError(
      'connect to redis://app:hunter2@cache:6379 failed, see https://cdn.test/purge?token=abc123',
    );
    recordSpanError(span, error);
    span.end();
    const [ended] = tracing.spans();
    const exported = JSON.stringify({ status: ended?.status, events: ended?.events });
    expect(exported).not.toContain('hunter2');
    expect(exported).not.toContain('abc123');
    expect(ended?.status.message).toBe(
      'connect to redis://app:[redacted]@cache:6379 failed, see https://cdn.test/purge?token=[redacted]',
    );
    const attributes = ended?.events[0]?.attributes;
    expect(attributes?.['exception.type']).toBe('TypeError');
    expect(attributes?.['exception.message']).toBe(ended?.status.message);
    expect(String(attributes?.['exception.stacktrace'])).toContain('redis://app:[redacted]@cache:6379');
  });
});

describe('trace headers and batch links', () => {
  it('carries a span context through traceparent and back', () => {
    tracing = installInMemoryTracing();
    const span = activeTracer('test')?.startSpan('walpurge.transaction');
    const headers = traceHeaders(trace.setSpan(ROOT_CONTEXT, span!));
    expect(headers['traceparent']).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    const read = spanContextOfHeaders({ traceparent: Buffer.from(headers['traceparent'] ?? '') });
    expect(read?.traceId).toBe(span?.spanContext().traceId);
    expect(read?.spanId).toBe(span?.spanContext().spanId);
    expect(spanContextOfHeaders({ lsn: '0/1' })).toBeUndefined();
    expect(spanContextOfHeaders({ traceparent: 'not a traceparent' })).toBeUndefined();
  });

  it('links each distinct origin once, at most MAX_BATCH_LINKS, and counts the rest', () => {
    tracing = installInMemoryTracing();
    const tracer = activeTracer('test');
    const events: ChangeEvent[] = [];
    for (let i = 0; i < MAX_BATCH_LINKS + 2; i += 1) {
      const origin = trace.setSpan(ROOT_CONTEXT, tracer!.startSpan(`walpurge.transaction ${i}`));
      // Two events of each transaction: one link between them.
      for (const id of [2 * i, 2 * i + 1]) {
        const one = event(id);
        rememberOrigin(one, traceHeaders(origin));
        events.push(one);
      }
    }
    events.push(event(-1)); // consumed without a traceparent: nothing to link
    const { links, dropped } = batchLinks(events);
    expect(links).toHaveLength(MAX_BATCH_LINKS);
    expect(dropped).toBe(2);
    expect(new Set(links.map((link) => link.context.spanId)).size).toBe(MAX_BATCH_LINKS);
  });

  it('does not link the batch to its parent, the active span', () => {
    tracing = installInMemoryTracing();
    const tracer = activeTracer('test')!;
    const parent = trace.setSpan(ROOT_CONTEXT, tracer.startSpan('walpurge.transaction parent'));
    const other = trace.setSpan(ROOT_CONTEXT, tracer.startSpan('walpurge.transaction other'));
    const [mine, theirs] = [event(1), event(2)];
    rememberOrigin(mine, traceHeaders(parent));
    rememberOrigin(theirs, traceHeaders(other));
    const { links } = context.with(parent, () => batchLinks([mine, theirs]));
    expect(links.map((link) => link.context.spanId)).toEqual([trace.getSpanContext(other)?.spanId]);
  });
});
