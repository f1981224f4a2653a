import { kafkaHeaderBytes, kafkaRecordBytes, type ChangeEvent } from '@walpurge/protocol';
import { kafkaMessageOf } from '../kafka/message-size.js';

/**
 * What one decoded event weighs against `database.maxPendingBytes` while the Kafka sink holds it:
 * its Kafka record (encoded JSON value, key, headers, framing; `tracing`: plus the trace header),
 * the estimate the sink sizes its requests with and reuses (the message is encoded once). The heap
 * holds a few times this (decoded objects plus the encoded copy in the producer's queue).
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
 * What one decoded event weighs against `database.maxPendingBytes` for a sink that never encodes
 * it (the inline transport): the length of its JSON counted in characters, the way the heap holds
 * it, without encoding it. Encoding only to measure cost the inline listener a fifth of its CPU
 * (3 µs per event, against about 0.1 µs for this walk); for ASCII rows the two measures are within
 * about 15% (the record adds key, headers and framing); text beyond Latin-1 counts two bytes per
 * UTF-16 unit, as V8 stores it (the record counts its UTF-8 bytes).
 */
export function decodedEventBytes(event: ChangeEvent): number {
  try {
    return (
      EVENT_ENVELOPE_BYTES +
      jsonLength(event.key) +
      jsonLength(event.before) +
      jsonLength(event.after) +
      jsonLength(event.unchanged)
    );
  } catch {
    // A json column nested deeper than the stack: never crash the socket's data handler over a
    // measure; count it as big, so the budget errs towards pausing.
    return UNMEASURABLE_EVENT_BYTES;
  }
}

const UNMEASURABLE_EVENT_BYTES = 1024 * 1024;

/** The event's fixed fields (version, op, source with table, LSN, xid, commit time) in JSON. */
const EVENT_ENVELOPE_BYTES = 256;

const BEYOND_LATIN1 = /[\u0100-\uffff]/;

/** Length of `value`'s JSON as the heap holds its strings (1 or 2 bytes per unit), escapes ignored; numbers as 8. */
function jsonLength(value: unknown): number {
  if (value === null || value === undefined) return 4;
  switch (typeof value) {
    case 'string':
      // V8 keeps a string with any character beyond Latin-1 at two bytes per unit.
      return (BEYOND_LATIN1.test(value) ? 2 * value.length : value.length) + 2;
    case 'object': {
      let sum = 2;
      if (Array.isArray(value)) {
        for (const item of value) sum += 1 + jsonLength(item);
        return sum;
      }
      const row = value as Record<string, unknown>;
      for (const name in row) sum += name.length + 4 + jsonLength(row[name]);
      return sum;
    }
    default:
      return 8;
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
