import type { Message } from 'kafkajs';
import { ErrorCode, WalpurgeError } from '@walpurge/core';
import {
  KAFKA_BATCH_OVERHEAD,
  encodeChangeEvent,
  kafkaHeaderBytes,
  kafkaRecordBytes,
  messageKey,
  qualifiedTable,
  type ChangeEvent,
  type Row,
} from '@walpurge/protocol';

/** Header naming the columns left out of an event that would not fit into one Kafka message. */
export const OMITTED_HEADER = 'walpurge-omitted';

export interface SizedMessage {
  message: Message;
  /** Key, value, headers and record framing (kafkaRecordBytes); the batch header comes on top. */
  bytes: number;
  /** Columns removed from `before`/`after` to fit (empty when the event fit as it was). */
  omitted: string[];
}

export function toKafkaMessage(event: ChangeEvent, omitted: readonly string[] = []): Message {
  const headers: Record<string, string> = {
    table: qualifiedTable(event),
    op: event.op,
    lsn: event.source.lsn,
  };
  if (omitted.length > 0) headers[OMITTED_HEADER] = omitted.join(',');
  return {
    key: messageKey(event),
    value: encodeChangeEvent(event),
    headers,
    timestamp: String(Date.parse(event.source.commitTs)),
  };
}

/**
 * The event's Kafka message as it is (nothing omitted), encoded once per event: the listener
 * measures every event against its memory budget (pendingEventBytes) before the sink sends it, and
 * both use this same message instead of encoding the JSON twice. Events are never changed after
 * assembly, so the cached message stays right; it goes with the event.
 */
const encodedMessages = new WeakMap<ChangeEvent, Message>();

export function kafkaMessageOf(event: ChangeEvent): Message {
  let message = encodedMessages.get(event);
  if (message === undefined) {
    message = toKafkaMessage(event);
    encodedMessages.set(event, message);
  }
  return message;
}

/** Whether a batch of records totalling `recordBytes` (kafkaRecordBytes) fits into `maxBytes`. */
export function fitsBatch(recordBytes: number, maxBytes: number): boolean {
  return KAFKA_BATCH_OVERHEAD + recordBytes <= maxBytes;
}

function without(row: Row | null, column: string): Row | null {
  if (row === null || !(column in row)) return row;
  const { [column]: _dropped, ...rest } = row;
  return rest;
}

/**
 * The Kafka message for an event, made to fit `maxBytes`. A row with huge column values (a big
 * TOASTed text or jsonb) would be refused by Kafka and block the listener forever, so the largest
 * non-key columns are left out of `before`/`after` until it fits, and named in a header. Consumers
 * then see those columns as missing: `when.changed` counts them as changed and templates that need
 * them purge the rule's fallback instead (a rule without one skips that entry, counted as an unknown
 * value). Key columns are never left out, so templates on the key always render.
 * Throws a non-retriable error when even the key alone does not fit.
 *
 * `extraHeaders` (the trace context, when tracing is on) are added to the message and counted
 * against `maxBytes` like the others.
 */
export function fitMessage(
  event: ChangeEvent,
  maxBytes: number,
  extraHeaders?: Readonly<Record<string, string>>,
): SizedMessage {
  if (extraHeaders === undefined) return fitPlainMessage(event, maxBytes, 0);
  const extra = kafkaHeaderBytes(extraHeaders);
  const fitted = fitPlainMessage(event, maxBytes, extra);
  const headers = { ...fitted.message.headers, ...extraHeaders };
  return { ...fitted, message: { ...fitted.message, headers }, bytes: fitted.bytes + extra };
}

/** The message without `extraHeaders`, fitted into `maxBytes` less the `reserved` bytes they take. */
function fitPlainMessage(event: ChangeEvent, maxBytes: number, reserved: number): SizedMessage {
  const budget = maxBytes - reserved;
  const message = kafkaMessageOf(event);
  const bytes = kafkaRecordBytes(message);
  if (fitsBatch(bytes, budget)) return { message, bytes, omitted: [] };

  const keyColumns = new Set(Object.keys(event.key ?? {}));
  const sizes = new Map<string, number>();
  for (const row of [event.before, event.after]) {
    for (const [column, value] of Object.entries(row ?? {})) {
      if (keyColumns.has(column)) continue;
      sizes.set(column, (sizes.get(column) ?? 0) + (JSON.stringify(value)?.length ?? 0));
    }
  }
  const candidates = [...sizes].sort((a, b) => b[1] - a[1]).map(([column]) => column);
  let reduced = event;
  const omitted: string[] = [];
  for (const column of candidates) {
    reduced = { ...reduced, before: without(reduced.before, column), after: without(reduced.after, column) };
    omitted.push(column);
    const smaller = toKafkaMessage(reduced, omitted);
    const smallerBytes = kafkaRecordBytes(smaller);
    if (fitsBatch(smallerBytes, budget)) return { message: smaller, bytes: smallerBytes, omitted };
  }
  throw new WalpurgeError(
    ErrorCode.EventInvalid,
    `a change event of ${qualifiedTable(event)} at ${event.source.lsn} does not fit into a Kafka message of ${maxBytes} bytes${reserved > 0 ? ` (${reserved} of them for its trace headers)` : ''} even without its non-key columns`,
    {
      retriable: false,
      hint: "raise the topic's max.message.bytes (and the broker's message.max.bytes) and kafka.maxMessageBytes, or shorten the table's key columns",
      details: { table: qualifiedTable(event), lsn: event.source.lsn, bytes },
    },
  );
}
