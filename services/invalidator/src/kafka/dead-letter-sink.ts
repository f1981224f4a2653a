import { encodeChangeEvent, messageKey, qualifiedTable } from '@walpurge/protocol';
import type { DeadLetter, DeadLetterSink } from '../dead-letter/dead-letter-sink.js';
import type { DeadLetterQueue } from './dead-letter.js';
import { deadLetterHeaders } from './dead-letter-headers.js';

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
    const extraHeaders = {
      [deadLetterHeaders.cause]: letter.cause,
      [deadLetterHeaders.target]: letter.target,
      [deadLetterHeaders.rules]: letter.rules.join(','),
      [deadLetterHeaders.table]: qualifiedTable(letter.event),
    };
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
