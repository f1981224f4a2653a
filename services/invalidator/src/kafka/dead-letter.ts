import type { IHeaders, KafkaMessage, Producer } from 'kafkajs';
import {
  backoffDelay,
  errorMessage,
  isWalpurgeError,
  sleep,
  type BackoffOptions,
  type Logger,
} from '@walpurge/core';
import type { InvalidatorMetrics } from '../metrics.js';

export type DeadLetterReason = 'undecodable' | 'purge-rejected';

export const deadLetterHeaders = {
  error: 'x-walpurge-error',
  errorCode: 'x-walpurge-error-code',
  reason: 'x-walpurge-reason',
  topic: 'x-walpurge-source-topic',
  partition: 'x-walpurge-source-partition',
  offset: 'x-walpurge-source-offset',
} as const;

/**
 * Poison messages go to the dead-letter topic, unchanged (key, value, headers) plus headers saying
 * why and where they came from, so they can be inspected and replayed. The send is retried until
 * Kafka acknowledges it: the source offset is committed only after that.
 */
export class DeadLetterQueue {
  constructor(
    private readonly producer: Producer,
    private readonly topic: string,
    private readonly metrics: InvalidatorMetrics,
    private readonly logger: Logger,
    private readonly backoff: BackoffOptions,
  ) {}

  async send(
    source: { topic: string; partition: number },
    message: KafkaMessage,
    error: unknown,
    reason: DeadLetterReason,
    signal: AbortSignal,
  ): Promise<void> {
    const headers: IHeaders = {
      ...(message.headers ?? {}),
      [deadLetterHeaders.error]: errorMessage(error).slice(0, 2_000),
      [deadLetterHeaders.errorCode]: isWalpurgeError(error) ? error.code : 'unknown',
      [deadLetterHeaders.reason]: reason,
      [deadLetterHeaders.topic]: source.topic,
      [deadLetterHeaders.partition]: String(source.partition),
      [deadLetterHeaders.offset]: message.offset,
    };
    for (let attempt = 0; ; attempt += 1) {
      try {
        await this.producer.send({
          topic: this.topic,
          acks: -1,
          messages: [{ key: message.key, value: message.value, headers }],
        });
        break;
      } catch (sendError) {
        if (signal.aborted) throw sendError;
        const delay = backoffDelay(attempt, this.backoff);
        this.logger.warn({ err: sendError, delayMs: delay }, 'dead-letter send failed, retrying');
        await sleep(delay, signal);
      }
    }
    this.metrics.deadLetters.inc({ reason });
    this.logger.warn(
      {
        reason,
        sourceTopic: source.topic,
        partition: source.partition,
        offset: message.offset,
        deadLetterTopic: this.topic,
        error: errorMessage(error),
      },
      'message sent to the dead-letter topic',
    );
  }
}
