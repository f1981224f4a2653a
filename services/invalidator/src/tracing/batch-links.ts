import { ROOT_CONTEXT, context, trace, type Link, type SpanContext } from '@opentelemetry/api';
import { spanContextOfHeaders, traceHeaders, type ChangeEvent, type RecordHeaders } from '@walpurge/protocol';

/** Most links a batch span carries; the others are counted in `walpurge.links.dropped`. */
export const MAX_BATCH_LINKS = 128;

/**
 * The listener span each consumed event came from (its record's traceparent), kept beside the
 * event (which the coalescer may merge with other partitions' events) for as long as it lives.
 * Filled only when tracing is on.
 */
const origins = new WeakMap<ChangeEvent, SpanContext>();

export function rememberOrigin(event: ChangeEvent, headers: RecordHeaders | undefined): void {
  const origin = spanContextOfHeaders(headers);
  if (origin) origins.set(event, origin);
}

/**
 * The trace headers a record re-sent for `event` (the CDN queue topic) carries: those of the
 * listener span it came from when known, else the caller's active span's.
 */
export function originHeaders(event: ChangeEvent): Record<string, string> {
  const origin = origins.get(event);
  return traceHeaders(origin ? trace.setSpanContext(ROOT_CONTEXT, origin) : context.active());
}

/**
 * Links of a batch span: one per distinct listener span among the events (the events of one
 * transaction share it), at most `max`; `dropped` counts the rest. The caller's active span, the
 * batch's parent (the inline transport calls the invalidator inside the transaction's span), is
 * not linked again.
 */
export function batchLinks(
  events: readonly ChangeEvent[],
  max = MAX_BATCH_LINKS,
): { links: Link[]; dropped: number } {
  const seen = new Set<string>();
  const parent = trace.getSpanContext(context.active());
  if (parent) seen.add(`${parent.traceId}-${parent.spanId}`);
  const links: Link[] = [];
  let dropped = 0;
  const add = (origin: SpanContext | undefined): void => {
    if (!origin) return;
    const id = `${origin.traceId}-${origin.spanId}`;
    if (seen.has(id)) return;
    seen.add(id);
    if (links.length < max) links.push({ context: origin });
    else dropped += 1;
  };
  for (const event of events) add(origins.get(event));
  return { links, dropped };
}
