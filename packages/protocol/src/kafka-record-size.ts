/**
 * What a Kafka message costs against a topic's `max.message.bytes`, which limits a record batch:
 * the listener keeps its produce requests under it, the invalidator its dead letters. One estimate
 * for both, an upper bound (varints counted at their widest), so neither is refused for size.
 */

/** v2 record batch header (61 bytes, the 12-byte log overhead included): once per batch. */
export const KAFKA_BATCH_OVERHEAD = 61;
/** One record's framing (length, attributes, timestamp and offset deltas, key/value lengths, header count). */
const RECORD_OVERHEAD = 40;
/** Two varint lengths per header. */
const HEADER_OVERHEAD = 10;

type Bytes = Buffer | string | null | undefined;

/** The parts of a kafkajs Message that count (structural, so this package needs no kafkajs). */
export interface KafkaRecordParts {
  key?: Bytes;
  value: Bytes;
  headers?: Readonly<Record<string, Bytes | ReadonlyArray<Buffer | string>>>;
}

function bytesOf(data: Bytes): number {
  if (data === null || data === undefined) return 0;
  return Buffer.isBuffer(data) ? data.length : Buffer.byteLength(data);
}

/** Bytes of the headers as Kafka stores them. */
export function kafkaHeaderBytes(headers: KafkaRecordParts['headers']): number {
  let bytes = 0;
  for (const [name, value] of Object.entries(headers ?? {})) {
    const values: readonly Bytes[] = Array.isArray(value) ? value : [value as Bytes];
    for (const one of values) bytes += HEADER_OVERHEAD + Buffer.byteLength(name) + bytesOf(one);
  }
  return bytes;
}

/** One record inside a batch; a batch of records costs KAFKA_BATCH_OVERHEAD + the sum of these. */
export function kafkaRecordBytes(message: KafkaRecordParts): number {
  return RECORD_OVERHEAD + bytesOf(message.key) + bytesOf(message.value) + kafkaHeaderBytes(message.headers);
}
