import {
  SpanStatusCode,
  isSpanContextValid,
  trace,
  type Attributes,
  type Link,
  type Span,
  type SpanKind,
  type Tracer,
} from '@opentelemetry/api';
import { errorMessage } from './errors.js';

/**
 * The tracer `name` when a tracer provider is installed (`walpurge run` with tracing turned on, or
 * a test), else undefined: callers check once, when they are built, and then skip every tracing
 * step, so a process without tracing builds no span, header or context per record.
 *
 * The API's global provider is a no-op until an SDK registers one, and its no-op tracer gives a
 * root span the invalid (all-zero) span context, while any SDK gives even an unsampled span real
 * ids. The probe is never ended, so it is never exported.
 */
export function activeTracer(name: string): Tracer | undefined {
  const tracer = trace.getTracer(name);
  const probe = tracer.startSpan('walpurge.probe', { root: true });
  return isSpanContextValid(probe.spanContext()) ? tracer : undefined;
}

/** Marks a span failed: status ERROR with the one-line message, and the exception as an event. */
export function recordSpanError(span: Span, error: unknown): void {
  span.recordException(error instanceof Error ? error : errorMessage(error));
  span.setStatus({ code: SpanStatusCode.ERROR, message: errorMessage(error) });
}

export interface SpanOptions {
  attributes?: Attributes;
  links?: Link[];
  kind?: SpanKind;
}

/**
 * Runs `work` inside a span that is the active one meanwhile (child of the caller's), ended when
 * `work` settles and marked failed when it rejects. Without a tracer `work` runs alone.
 */
export async function inSpan<T>(
  tracer: Tracer | undefined,
  name: string,
  options: SpanOptions,
  work: (span: Span | undefined) => Promise<T>,
): Promise<T> {
  if (!tracer) return work(undefined);
  return tracer.startActiveSpan(name, options, async (span) => {
    try {
      return await work(span);
    } catch (error) {
      recordSpanError(span, error);
      throw error;
    } finally {
      span.end();
    }
  });
}
