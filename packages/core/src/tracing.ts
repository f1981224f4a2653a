import {
  ProxyTracerProvider,
  SpanStatusCode,
  isSpanContextValid,
  trace,
  type Attributes,
  type Link,
  type Span,
  type SpanKind,
  type Tracer,
  type TracerProvider,
} from '@opentelemetry/api';
import { errorMessage } from './errors.js';
import { redactSecrets } from './redact.js';

/** Whether each tracer provider seen so far is a real one (see activeTracer). */
const realProviders = new WeakMap<TracerProvider, boolean>();

/**
 * The tracer `name` when a tracer provider is installed (`walpurge run` with tracing turned on, or
 * a test), else undefined: callers check when they are built and then skip every tracing step, so
 * a process without tracing builds no span, header or context per record.
 *
 * The API's global provider is a no-op until an SDK registers one, and its no-op tracer gives a
 * root span the invalid (all-zero) span context, while any SDK gives even an unsampled span real
 * ids. Probed once per provider; the probe is never ended, so it is never exported.
 */
export function activeTracer(name: string): Tracer | undefined {
  const global = trace.getTracerProvider();
  const provider = global instanceof ProxyTracerProvider ? global.getDelegate() : global;
  let real = realProviders.get(provider);
  if (real === undefined) {
    const probe = provider.getTracer('@walpurge/core').startSpan('walpurge.probe', { root: true });
    real = isSpanContextValid(probe.spanContext());
    realProviders.set(provider, real);
  }
  return real ? trace.getTracer(name) : undefined;
}

/**
 * Marks a span failed: status ERROR with the one-line message, and the exception as an event.
 * Spans leave the process like log lines do, so they get the same scrubbing (connection URLs with
 * passwords, token query parameters) in the message and the stack.
 */
export function recordSpanError(span: Span, error: unknown): void {
  const message = redactSecrets(errorMessage(error));
  span.recordException(
    error instanceof Error
      ? {
          name: error.name,
          message,
          ...(error.stack !== undefined ? { stack: redactSecrets(error.stack) } : {}),
        }
      : message,
  );
  span.setStatus({ code: SpanStatusCode.ERROR, message });
}

export interface SpanOptions {
  /** A new trace, whatever span is active. */
  root?: boolean;
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
