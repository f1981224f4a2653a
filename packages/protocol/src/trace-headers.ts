import {
  ROOT_CONTEXT,
  propagation,
  trace,
  type Context,
  type SpanContext,
  type TextMapGetter,
} from '@opentelemetry/api';

/** The W3C trace-context header a produced change record carries when tracing is on. */
const TRACEPARENT_HEADER = 'traceparent';

type HeaderValue = Buffer | string | ReadonlyArray<Buffer | string> | undefined;
/** Kafka record headers as kafkajs reads them (structural, so this package needs no kafkajs). */
export type RecordHeaders = Readonly<Record<string, HeaderValue>>;

const recordHeaderGetter: TextMapGetter<RecordHeaders> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => {
    const value = carrier[key];
    if (value === undefined) return undefined;
    return Array.isArray(value) ? value.map(String) : String(value as Buffer | string);
  },
};

/**
 * The trace-context headers (`traceparent`, and `tracestate` when there is one) that carry `context`'s
 * span, written by the globally installed propagator (W3C trace context by default at the edge).
 * Empty when the context holds no span or no propagator is installed.
 */
export function traceHeaders(context: Context): Record<string, string> {
  const carrier: Record<string, string> = {};
  propagation.inject(context, carrier);
  return carrier;
}

/** The span context a record's trace headers name, if they name a valid one. */
export function spanContextOfHeaders(headers: RecordHeaders | undefined): SpanContext | undefined {
  if (!headers || headers[TRACEPARENT_HEADER] === undefined) return undefined;
  return trace.getSpanContext(propagation.extract(ROOT_CONTEXT, headers, recordHeaderGetter));
}
