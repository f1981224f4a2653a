import { kafkaHeaderBytes, kafkaRecordBytes, type ChangeEvent } from '@walpurge/protocol';
import { kafkaMessageOf } from '../kafka/message-size.js';

/**
 * What one decoded event weighs against `database.maxPendingBytes`: its Kafka record (encoded JSON
 * value, key, headers, framing; `tracing`: plus the trace header), the estimate the Kafka sink sizes
 * its requests with. The same
 * measure whatever the sink, so the budget means the same in inline and Kafka mode; the heap holds
 * a few times this (decoded objects plus, for Kafka, the encoded copy in the producer's queue).
 * Never throws: it runs in the replication socket's data handler, and an event too big to encode as
 * one string (V8 caps strings at about 512 MB) is the sink's to refuse, not a reason to crash.
 */
export function pendingEventBytes(event: ChangeEvent, tracing = false): number {
  const trace = tracing ? TRACE_HEADER_BYTES : 0;
  try {
    return kafkaRecordBytes(kafkaMessageOf(event)) + trace;
  } catch {
    return roughBytes(event.key) + roughBytes(event.before) + roughBytes(event.after) + trace;
  }
}

/**
 * With tracing on, the sink adds a `traceparent` header to every record (fixed size, W3C version 00).
 * A `tracestate` is left out: walpurge's own spans set none, and its size is the propagator's.
 */
const TRACE_HEADER_BYTES = kafkaHeaderBytes({
  traceparent: `00-${'0'.repeat(32)}-${'0'.repeat(16)}-01`,
});

/** Upper-bound size of a JSON value without encoding it (3 UTF-8 bytes per UTF-16 unit). */
function roughBytes(value: unknown): number {
  if (typeof value === 'string') return 2 + value.length * 3;
  if (Array.isArray(value)) return value.reduce((sum: number, item) => sum + 1 + roughBytes(item), 2);
  if (value !== null && typeof value === 'object')
    return Object.entries(value).reduce(
      (sum, [name, item]) => sum + 4 + name.length * 3 + roughBytes(item),
      2,
    );
  return 24;
}

/**
 * Flush a transaction's chunk to the sink once it holds this share of the budget, so that a chunk
 * still being filled can never alone keep the pending bytes above the resume threshold (half).
 */
export function chunkByteLimit(maxPendingBytes: number): number {
  return Math.max(1, Math.floor(maxPendingBytes / 4));
}
