import { encodeChangeEvent, messageKey } from '@walpurge/protocol';
import type { Logger } from '@walpurge/core';
import type { DeadLetterSink } from '../dead-letter/dead-letter-sink.js';
import type { DeadLetterQueue } from '../kafka/dead-letter.js';
import type { InvalidatorMetrics } from '../metrics.js';

/**
 * Kafka transport: the dead-letter topic, with the record read from the CDN topic sent unchanged;
 * counted as a rejected event like a purge the change consumer dead-letters.
 */
export function deadLetterTopicSink(
  queue: DeadLetterQueue,
  cdnTopic: string,
  metrics: InvalidatorMetrics,
): DeadLetterSink {
  return {
    send: async (letter, signal) => {
      const record = letter.record ?? {
        topic: cdnTopic,
        partition: 0,
        message: {
          key: Buffer.from(messageKey(letter.event)),
          value: encodeChangeEvent(letter.event),
          timestamp: String(Date.now()),
          attributes: 0,
          offset: '-1',
          headers: {},
        },
      };
      await queue.send(
        { topic: record.topic, partition: record.partition },
        record.message,
        letter.error,
        letter.cause,
        signal,
      );
      metrics.rejectedEvents.inc({ transport: 'kafka' });
    },
  };
}

/** Inline transport, until a dead-letter table exists: the event logged in full at error level, and counted. */
export function loggingSink(logger: Logger, metrics: InvalidatorMetrics): DeadLetterSink {
  return {
    send: async (letter) => {
      metrics.rejectedEvents.inc({ transport: 'inline' });
      logger.error(
        {
          err: letter.error,
          cause: letter.cause,
          target: letter.target,
          rules: letter.rules,
          event: encodeChangeEvent(letter.event).toString('utf8'),
        },
        `${letter.target} rejected the purge for good and no dead-letter store is configured (inline transport): event logged and skipped`,
      );
    },
  };
}
