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
import { deadLetterHeaders } from './dead-letter-headers.js';
import { deadLetterCandidates, isTooLargeError, type DeadLetterCandidate } from './dead-letter-size.js';

export { deadLetterHeaders } from './dead-letter-headers.js';

export type DeadLetterReason = 'undecodable' | 'purge-rejected' | 'cdn-rejected';

export interface DeadLetterQueueOptions {
  producer: Producer;
  topic: string;
  /**
   * Largest dead letter to send as is (`kafka.maxMessageBytes`, the limit the listener keeps to);
   * bigger ones are cut (see dead-letter-size.ts) without asking the broker first.
   */
  maxMessageBytes: number;
  metrics: InvalidatorMetrics;
  logger: Logger;
  backoff: BackoffOptions;
}

/**
 * Poison messages go to the dead-letter topic, unchanged (key, value, headers) plus headers saying
 * why and where they came from, so they can be inspected and replayed. The send is retried until
 * Kafka acknowledges it: the source offset is committed only after that. A dead letter that would
 * not fit the topic's size limit is never dropped and never retried as is: it is sent cut down
 * (value replaced by a stub naming the original's topic/partition/offset, marked with
 * `x-walpurge-truncated`) and counted.
 */
export class DeadLetterQueue {
  constructor(private readonly options: DeadLetterQueueOptions) {}

  async send(
    source: { topic: string; partition: number },
    message: KafkaMessage,
    error: unknown,
    reason: DeadLetterReason,
    signal: AbortSignal,
  ): Promise<void> {
    const { maxMessageBytes, metrics, logger } = this.options;
    const errorText = errorMessage(error).slice(0, 2_000);
    const errorHeaders: IHeaders = {
      [deadLetterHeaders.error]: errorText,
      [deadLetterHeaders.errorCode]: isWalpurgeError(error) ? error.code : 'unknown',
      [deadLetterHeaders.reason]: reason,
      [deadLetterHeaders.topic]: source.topic,
      [deadLetterHeaders.partition]: String(source.partition),
      [deadLetterHeaders.offset]: message.offset,
    };
    const candidates = deadLetterCandidates(
      {
        key: message.key,
        value: message.value,
        headers: message.headers ?? {},
        errorHeaders,
        error: errorText,
        source: { ...source, offset: message.offset },
        reason,
      },
      maxMessageBytes,
    );
    // The first copy within the configured limit; the smallest when none is.
    let index = candidates.findIndex((candidate) => candidate.bytes <= maxMessageBytes);
    let trigger: 'limit' | 'broker' = 'limit';
    if (index < 0) index = candidates.length - 1;
    let failures = 0;
    for (;;) {
      const candidate = candidates[index] as DeadLetterCandidate;
      try {
        await this.options.producer.send({
          topic: this.options.topic,
          acks: -1,
          messages: [candidate.message],
        });
        break;
      } catch (sendError) {
        if (signal.aborted) throw sendError;
        const tooLarge = isTooLargeError(sendError);
        // The topic's own max.message.bytes (or the broker's message.max.bytes) can be below
        // kafka.maxMessageBytes: the broker's refusal is final for this size, so cut further at once.
        if (tooLarge && index < candidates.length - 1) {
          logger.warn(
            { err: sendError, bytes: candidate.bytes, deadLetterTopic: this.options.topic },
            'the dead-letter topic refused the dead letter as too large; sending a cut-down copy',
          );
          index += 1;
          trigger = 'broker';
          continue;
        }
        // Only a topic limit below ~1 KB refuses the smallest copy: loud, and retried like any
        // failure (the offset must not be committed without its dead letter).
        const delay = backoffDelay(failures, this.options.backoff);
        failures += 1;
        logger[tooLarge ? 'error' : 'warn'](
          { err: sendError, delayMs: delay, bytes: candidate.bytes },
          tooLarge
            ? 'even the smallest dead letter is too large for the dead-letter topic; raise its max.message.bytes'
            : 'dead-letter send failed, retrying',
        );
        await sleep(delay, signal);
      }
    }
    const sent = candidates[index] as DeadLetterCandidate;
    metrics.deadLetters.inc({ reason });
    if (sent.truncated.length > 0) metrics.deadLettersTruncated.inc({ reason, trigger });
    logger.warn(
      {
        reason,
        sourceTopic: source.topic,
        partition: source.partition,
        offset: message.offset,
        deadLetterTopic: this.options.topic,
        error: errorMessage(error),
        ...(sent.truncated.length > 0
          ? {
              truncated: sent.truncated,
              trigger,
              uncutBytes: candidates[0]?.bytes,
              maxMessageBytes,
            }
          : {}),
      },
      sent.truncated.length > 0
        ? 'message sent to the dead-letter topic cut down to fit its size limit (the original stays at its source offset)'
        : 'message sent to the dead-letter topic',
    );
  }
}
