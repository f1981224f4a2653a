import type { IHeaders, KafkaMessage } from 'kafkajs';
import { decodeAnyChangeEvent, encodeChangeEvent, messageKey, qualifiedTable } from '@walpurge/protocol';
import type { CompiledRules } from '@walpurge/rules';
import type { DeadLetter, DeadLetterSink } from '../dead-letter/dead-letter-sink.js';
import { matchedRuleNames } from '../dead-letter/matched-rules.js';
import { refusingTarget } from '../dead-letter/refusing-target.js';
import type { DeadLetterQueue, DeadLetterReason } from './dead-letter.js';
import { deadLetterHeaders } from './dead-letter-headers.js';

function refusalHeaders(letter: Omit<DeadLetter, 'error' | 'record'>): IHeaders {
  return {
    [deadLetterHeaders.cause]: letter.cause,
    [deadLetterHeaders.target]: letter.target,
    [deadLetterHeaders.rules]: letter.rules.join(','),
    [deadLetterHeaders.table]: qualifiedTable(letter.event),
  };
}

/**
 * The same headers for a refused record the consumer dead-letters directly (DeadLetterQueue's
 * `refusalHeaders`): the event decoded again, its rules matched again, the target from the error.
 */
export function refusalHeadersOf(
  rules: CompiledRules,
): (message: Pick<KafkaMessage, 'key' | 'value'>, error: unknown, reason: DeadLetterReason) => IHeaders {
  return (message, error, reason) => {
    if (reason === 'undecodable') return {};
    let event;
    try {
      event = decodeAnyChangeEvent(message.value, message.key);
    } catch {
      return {};
    }
    if (!event) return {};
    return refusalHeaders({
      event,
      cause: reason,
      target: refusingTarget(error),
      rules: matchedRuleNames(rules, event),
    });
  };
}

/**
 * The Kafka transport's sink: the dead-letter topic. A letter read from Kafka is dead-lettered
 * unchanged (key, value, headers) as always; one that was not (a CDN lane entry) is sent as the
 * change message the listener would have produced (same key, so a redrive lands on the same
 * partition as the row's other changes). Either way it carries headers saying why, which target
 * refused, which rules matched and which table, so `walpurge dlq list|redrive` can select on them.
 */
export class KafkaDeadLetterSink implements DeadLetterSink {
  constructor(private readonly queue: DeadLetterQueue) {}

  async send(letter: DeadLetter, signal: AbortSignal): Promise<void> {
    const extraHeaders = refusalHeaders(letter);
    if (letter.record) {
      const { topic, partition, message } = letter.record;
      await this.queue.send({ topic, partition }, message, letter.error, letter.cause, signal, extraHeaders);
      return;
    }
    const message = {
      key: Buffer.from(messageKey(letter.event)),
      value: encodeChangeEvent(letter.event),
      headers: {},
      offset: '-1',
    };
    await this.queue.send(undefined, message, letter.error, letter.cause, signal, extraHeaders);
  }
}
