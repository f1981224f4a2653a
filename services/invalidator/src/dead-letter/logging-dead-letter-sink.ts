import type { Logger } from '@walpurge/core';
import { encodeChangeEvent } from '@walpurge/protocol';
import type { DeadLetterSink } from './dead-letter-sink.js';

/**
 * The last resort when no durable store is configured (an embedding without a database section):
 * the event is logged in full at error level, so it can still be recovered from the logs.
 */
export function loggingDeadLetterSink(logger: Logger): DeadLetterSink {
  return {
    send: async (letter) => {
      logger.error(
        {
          err: letter.error,
          cause: letter.cause,
          target: letter.target,
          rules: letter.rules,
          event: encodeChangeEvent(letter.event).toString('utf8'),
        },
        `${letter.target} rejected the purge for good and no dead-letter store is configured: event logged and skipped`,
      );
    },
  };
}
