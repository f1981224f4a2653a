import { WalpurgeError, ErrorCode, isWalpurgeError } from '@walpurge/core';
import type { ChangeEvent } from '@walpurge/protocol';
import type { DeadLetter } from '../dead-letter/dead-letter-sink.js';

/**
 * The durable hand-over between the Redis stage and the CDN lanes: `enqueue` resolves once the
 * events are stored (Kafka acknowledged them, or the row insert committed), so the caller may then
 * commit its offset or acknowledge its LSN. Only events with CDN targets are given to it.
 */
export interface CdnEnqueuer {
  enqueue(events: readonly ChangeEvent[], signal: AbortSignal): Promise<void>;
}

/** One queued event as a lane reads it back. */
export interface CdnQueueEntry {
  /** What the queue acknowledges it by: the row id (inline) or the offset (kafka). */
  id: string;
  event: ChangeEvent;
  /** When it was queued (ms since the epoch), for the lag gauge. */
  enqueuedAt: number;
  /** Kafka: the record it was read from, so its dead letter is the record unchanged. */
  record?: DeadLetter['record'];
}

/**
 * The CDN queue itself failed for good (its table is missing and cannot be created, no privilege):
 * not the event's fault, so the event must not be isolated and dead-lettered for it. Callers let
 * it through like an abort: the batch stays unacknowledged and the failure is loud.
 */
export class CdnQueueError extends WalpurgeError {
  constructor(message: string, options: { cause: unknown; hint?: string }) {
    super(ErrorCode.DatabaseSetup, message, { retriable: false, ...options });
    this.name = 'CdnQueueError';
  }
}

export function isCdnQueueError(error: unknown): boolean {
  return isWalpurgeError(error) && error.name === 'CdnQueueError';
}
