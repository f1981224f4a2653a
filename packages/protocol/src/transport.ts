import type { ChangeEvent } from './change-event.js';

/**
 * Where the listener hands committed changes. `publish` resolves only once every event is durable
 * downstream (Kafka acknowledged them, or — inline transport — their purges succeeded); the listener
 * advances the replication slot past a commit only after that. Events of one call are in commit
 * order and belong to one transaction (a huge transaction arrives in several calls; the commit is
 * acknowledged after the last).
 */
export interface ChangeSink {
  publish(events: readonly ChangeEvent[], signal?: AbortSignal): Promise<void>;
}

/**
 * What consumes changes (the invalidator). Must be idempotent: at-least-once delivery replays events
 * after crashes. Resolves when the work the events caused is done (purges succeeded); rejects with a
 * retriable error to make the caller back off and retry the same events.
 */
export type ChangeHandler = (events: readonly ChangeEvent[], signal?: AbortSignal) => Promise<void>;
