import { kafkaRecordBytes, type ChangeEvent } from '@walpurge/protocol';
import { toKafkaMessage } from '../kafka/message-size.js';

/**
 * What one decoded event weighs against `database.maxPendingBytes`: its Kafka record (encoded JSON
 * value, key, headers, framing), the estimate the Kafka sink sizes its requests with. The same
 * measure whatever the sink, so the budget means the same in inline and Kafka mode; the heap holds
 * a few times this (decoded objects plus, for Kafka, the encoded copy in the producer's queue).
 */
export function pendingEventBytes(event: ChangeEvent): number {
  return kafkaRecordBytes(toKafkaMessage(event));
}

/**
 * Flush a transaction's chunk to the sink once it holds this share of the budget, so that a chunk
 * still being filled can never alone keep the pending bytes above the resume threshold (half).
 */
export function chunkByteLimit(maxPendingBytes: number): number {
  return Math.max(1, Math.floor(maxPendingBytes / 4));
}
