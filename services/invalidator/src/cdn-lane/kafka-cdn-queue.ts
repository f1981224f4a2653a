import type { Producer } from 'kafkajs';
import {
  backoffDelay,
  errorMessage,
  isRetriable,
  sleep,
  type BackoffOptions,
  type Logger,
} from '@walpurge/core';
import { encodeChangeEvent, messageKey, type ChangeEvent } from '@walpurge/protocol';
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
        // kafkajs marks its errors retriable or not; an unmarked one is a broken producer: loud, not the events' fault.
        if (!isRetriable(error) || !(error instanceof Error && 'retriable' in error))
          throw new CdnQueueError(
            `cannot enqueue CDN purges on ${this.options.topic}: ${errorMessage(error)}`,
            {
              cause: error,
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
