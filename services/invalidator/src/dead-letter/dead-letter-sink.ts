import type { KafkaMessage } from 'kafkajs';
import type { ChangeEvent } from '@walpurge/protocol';

/** Why an event was set aside instead of purged. */
export type DeadLetterCause = 'purge-rejected' | 'cdn-rejected';

/** One event a purge target refused for good, with what an operator needs to select and redrive it. */
export interface DeadLetter {
  event: ChangeEvent;
  cause: DeadLetterCause;
  error: unknown;
  /** The target that refused it: `redis`, or a CDN provider name (`cloudflare`, …). */
  target: string;
  /** Names of the rules that matched the event, so a redrive can select by rule. */
  rules: readonly string[];
  /** The Kafka record it was read from, when it came from Kafka: then it is dead-lettered unchanged. */
  record?: { topic: string; partition: number; message: KafkaMessage };
}

/**
 * Where refused events go, durably, in both transports (the Kafka dead-letter topic; a table in
 * inline mode). `send` resolves only once the dead letter is stored: the caller then moves on
 * (commits the offset, acknowledges the LSN, deletes the CDN queue entry).
 */
export interface DeadLetterSink {
  send(letter: DeadLetter, signal: AbortSignal): Promise<void>;
}
