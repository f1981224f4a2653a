import type { Message, Producer } from 'kafkajs';
import {
  activeTracer,
  backoffDelay,
  errorMessage,
  sleep,
  type BackoffOptions,
  type Logger,
} from '@walpurge/core';
import {
  encodeChangeEvent,
  KAFKA_BATCH_OVERHEAD,
  KAFKA_DEFAULT_MAX_MESSAGE_BYTES,
  kafkaRecordBytes,
  messageKey,
  type ChangeEvent,
} from '@walpurge/protocol';
import { isTooLargeError } from '../kafka/dead-letter-size.js';
import { originHeaders } from '../tracing/batch-links.js';
import { CdnQueueError, type CdnEnqueuer } from './cdn-queue.js';

/**
 * Splits messages into consecutive sends whose record batch stays within `maxBytes`: Kafka checks a
 * whole record batch against the topic's max.message.bytes, so 1000 events of 1 KB sent at once are
 * refused although each fits. Same accounting as the listener's sink (kafkaRecordBytes plus the batch
 * header), kept here in a few lines rather than importing one service from another.
 */
export function splitByBytes(messages: readonly Message[], maxBytes: number): Message[][] {
  const sends: Message[][] = [];
  let current: Message[] = [];
  let bytes = 0;
  for (const message of messages) {
    const size = kafkaRecordBytes(message);
    if (current.length > 0 && KAFKA_BATCH_OVERHEAD + bytes + size > maxBytes) {
      sends.push(current);
      current = [];
      bytes = 0;
    }
    current.push(message);
    bytes += size;
  }
  if (current.length > 0) sends.push(current);
  return sends;
}

/**
 * The CDN queue of the kafka transport: the CDN topic, written with the same key and value as the
 * change topic's message (so a dead letter or a redrive is the event unchanged). `enqueue` resolves
 * once every in-sync replica has all of them (acks all, idempotent producer): only then does the
 * consumer commit the change topic's offset. A batch goes out as several sends one after another,
 * each within kafka.maxMessageBytes (never below Kafka's default), in order.
 */
export class KafkaCdnQueue implements CdnEnqueuer {
  /** Tracing on: each record carries its event's trace context, for the lane's links. */
  private readonly tracing = activeTracer('@walpurge/invalidator') !== undefined;

  constructor(
    private readonly options: {
      producer: Producer;
      topic: string;
      /** kafka.maxMessageBytes: the CDN topic is created to accept record batches of this size. */
      maxMessageBytes: number;
      logger: Logger;
      backoff: BackoffOptions;
    },
  ) {}

  async enqueue(events: readonly ChangeEvent[], signal: AbortSignal): Promise<void> {
    const messages: Message[] = events.map((event) => ({
      key: messageKey(event),
      value: encodeChangeEvent(event),
      ...(this.tracing ? { headers: originHeaders(event) } : {}),
    }));
    const maxBytes = Math.max(this.options.maxMessageBytes, KAFKA_DEFAULT_MAX_MESSAGE_BYTES);
    for (const send of splitByBytes(messages, maxBytes)) await this.send(send, signal);
  }

  private async send(messages: Message[], signal: AbortSignal): Promise<void> {
    for (let attempt = 0; ; attempt += 1) {
      signal.throwIfAborted();
      try {
        await this.options.producer.send({ topic: this.options.topic, acks: -1, messages });
        return;
      } catch (error) {
        if (signal.aborted) throw error;
        // Like the listener's sink, a send Kafka did not acknowledge is an outage (brokers, leaders,
        // the producer's own retries exhausted): retried. Only a topic refusing the size is for
        // good: sends are split to fit kafka.maxMessageBytes, so what is refused is one message
        // larger than the CDN topic's (or the broker's) limit, lower than the change topic's.
        if (isTooLargeError(error))
          throw new CdnQueueError(
            `cannot enqueue CDN purges on ${this.options.topic}: ${errorMessage(error)}`,
            {
              cause: error,
              hint: `a single change event does not fit: raise the CDN topic's max.message.bytes (and the broker's message.max.bytes) to at least kafka.maxMessageBytes (${this.options.maxMessageBytes}), as for the change topic`,
            },
          );
        const delayMs = backoffDelay(attempt, this.options.backoff);
        this.options.logger.warn(
          { err: error, delayMs, topic: this.options.topic },
          'CDN enqueue failed, retrying',
        );
        await sleep(delayMs, signal);
      }
    }
  }
}
