import type { Producer } from 'kafkajs';
import { backoffDelay, errorMessage, sleep, type BackoffOptions, type Logger } from '@walpurge/core';
import { encodeChangeEvent, messageKey, type ChangeEvent } from '@walpurge/protocol';
import { isTooLargeError } from '../kafka/dead-letter-size.js';
import { CdnQueueError, type CdnEnqueuer } from './cdn-queue.js';

/**
 * The CDN queue of the kafka transport: the CDN topic, written with the same key and value as the
 * change topic's message (so a dead letter or a redrive is the event unchanged). `enqueue` resolves
 * once every in-sync replica has it (acks all, idempotent producer): only then does the consumer
 * commit the change topic's offset.
 */
export class KafkaCdnQueue implements CdnEnqueuer {
  constructor(
    private readonly options: { producer: Producer; topic: string; logger: Logger; backoff: BackoffOptions },
  ) {}

  async enqueue(events: readonly ChangeEvent[], signal: AbortSignal): Promise<void> {
    const messages = events.map((event) => ({ key: messageKey(event), value: encodeChangeEvent(event) }));
    for (let attempt = 0; ; attempt += 1) {
      signal.throwIfAborted();
      try {
        await this.options.producer.send({ topic: this.options.topic, acks: -1, messages });
        return;
      } catch (error) {
        if (signal.aborted) throw error;
        // Like the listener's sink, a send Kafka did not acknowledge is an outage (brokers, leaders,
        // the producer's own retries exhausted): retried. Only a topic refusing the size is for
        // good, and it is not the event's fault (the CDN topic was created with a lower limit).
        if (isTooLargeError(error))
          throw new CdnQueueError(
            `cannot enqueue CDN purges on ${this.options.topic}: ${errorMessage(error)}`,
            {
              cause: error,
              hint: "raise the CDN topic's max.message.bytes to the change topic's",
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
