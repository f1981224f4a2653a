import type { IHeaders, Message } from 'kafkajs';
import { KAFKA_BATCH_OVERHEAD, kafkaHeaderBytes, kafkaRecordBytes } from '@walpurge/protocol';
import { deadLetterHeaders } from './dead-letter-headers.js';

/**
 * Fitting a dead letter into the dead-letter topic's size limit. The dead letter repeats the
 * original key, value and headers and adds up to ~2 KB of error headers, so a message close to the
 * limit no longer fits; Kafka refuses it for good (MESSAGE_TOO_LARGE) and a send retried forever
 * would stall the partition. Instead, the dead letter is made smaller step by step, every step
 * marked in a header and described in a small JSON value that says where the original is.
 */

/** Kept of the error message when even the value stub does not fit (the full one is logged). */
const SHORT_ERROR_CHARS = 200;
/** Kept of the original value, as text, in the stub: enough to recognise the table or format. */
const VALUE_HEAD_BYTES = 256;

function bytesOf(data: Buffer | null): number {
  return data?.length ?? 0;
}

/** What `message` costs against the topic's max.message.bytes when sent alone (an upper bound). */
export function recordBatchBytes(message: Message): number {
  return KAFKA_BATCH_OVERHEAD + kafkaRecordBytes(message);
}

export interface DeadLetterOriginal {
  key: Buffer | null;
  value: Buffer | null;
  /** The original message's own headers. */
  headers: IHeaders;
  /** The headers saying why and where from (deadLetterHeaders), the error message included. */
  errorHeaders: IHeaders;
  /** The error message (also in errorHeaders), shortened in the smallest copy. */
  error: string;
  /** Where the original was read; null for an event that was not read from Kafka as such. */
  source: { topic: string; partition: number; offset: string } | null;
  reason: string;
}

/** One way to send a dead letter; `truncated` is empty for the unchanged copy. */
export interface DeadLetterCandidate {
  message: Message;
  truncated: string[];
  bytes: number;
}

function stub(original: DeadLetterOriginal, truncated: string[], limitBytes: number): Buffer {
  const head = original.value?.subarray(0, VALUE_HEAD_BYTES).toString('utf8') ?? null;
  return Buffer.from(
    JSON.stringify({
      walpurgeDeadLetter: 'truncated',
      truncated,
      reason: original.reason,
      source: original.source,
      originalBytes: {
        key: bytesOf(original.key),
        value: bytesOf(original.value),
        headers: kafkaHeaderBytes(original.headers),
      },
      limitBytes,
      valueHead: head,
    }),
  );
}

/**
 * The dead letter in decreasing sizes: the unchanged copy; the value replaced by a JSON stub (key
 * and headers kept, so it can still be told apart); then key and original headers dropped as well
 * and the error message shortened. Every cut copy carries `x-walpurge-truncated` and the original
 * value's size, and its stub names the source topic, partition and offset, where the original can
 * be read while the topic retains it.
 */
export function deadLetterCandidates(
  original: DeadLetterOriginal,
  limitBytes: number,
): DeadLetterCandidate[] {
  const originalBytes = String(bytesOf(original.value));
  const full: Message = {
    key: original.key,
    value: original.value,
    headers: { ...original.headers, ...original.errorHeaders },
  };
  const valueCut = ['value'];
  const withoutValue: Message = {
    key: original.key,
    value: stub(original, valueCut, limitBytes),
    headers: {
      ...original.headers,
      ...original.errorHeaders,
      [deadLetterHeaders.truncated]: valueCut.join(','),
      [deadLetterHeaders.originalBytes]: originalBytes,
    },
  };
  const allCut = ['value', 'key', 'headers'];
  const minimal: Message = {
    key: null,
    value: stub(original, allCut, limitBytes),
    headers: {
      ...original.errorHeaders,
      [deadLetterHeaders.error]: original.error.slice(0, SHORT_ERROR_CHARS),
      [deadLetterHeaders.truncated]: allCut.join(','),
      [deadLetterHeaders.originalBytes]: originalBytes,
    },
  };
  return [
    { message: full, truncated: [], bytes: recordBatchBytes(full) },
    { message: withoutValue, truncated: valueCut, bytes: recordBatchBytes(withoutValue) },
    { message: minimal, truncated: allCut, bytes: recordBatchBytes(minimal) },
  ];
}

const tooLargeTypes = new Set(['MESSAGE_TOO_LARGE', 'RECORD_LIST_TOO_LARGE']);

/**
 * Whether Kafka refused the send because of its size (the broker's RecordTooLargeException,
 * surfaced by kafkajs as a KafkaJSProtocolError, possibly wrapped in a KafkaJSNonRetriableError).
 */
export function isTooLargeError(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && typeof current === 'object' && current !== null; depth += 1) {
    const { type, cause } = current as { type?: unknown; cause?: unknown };
    if (typeof type === 'string' && tooLargeTypes.has(type)) return true;
    current = cause;
  }
  return false;
}
