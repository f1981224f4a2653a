import type { ChangeEvent } from '@walpurge/protocol';

interface Waiter {
  events: readonly ChangeEvent[];
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * Gathers events submitted concurrently (several Kafka partitions at once) for at most `windowMs`
 * or until `maxEvents` are waiting, then purges them as one batch, so an entry purged by many events
 * is sent once. Every submitter's promise settles with the batch it joined: nobody is acknowledged
 * before its own purges are done.
 *
 * `windowMs` 0 (the default) merges what is submitted in the same turn of the event loop (the
 * partitions of one fetch are handed out together) and waits for nothing else. A timed window costs
 * more than it looks: kafkajs fetches again only when every partition of the previous fetch is done,
 * and partitions beyond `partitionsConsumedConcurrently` wait for a second round, so each change
 * waited one to three windows (10 ms window, 5,000 changes/s: p50 30 ms commit → purge, 3.7 ms
 * without a window).
 */
export class Coalescer {
  private waiting: Waiter[] = [];
  private waitingEvents = 0;
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;

  constructor(
    private readonly run: (events: readonly ChangeEvent[]) => Promise<void>,
    private readonly windowMs: number,
    private readonly maxEvents: number,
  ) {}

  submit(events: readonly ChangeEvent[]): Promise<void> {
    if (events.length === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.waiting.push({ events, resolve, reject });
      this.waitingEvents += events.length;
      if (this.waitingEvents >= this.maxEvents) this.flush();
      else if (this.windowMs === 0) this.immediate ??= setImmediate(() => this.flush());
      else this.timer ??= setTimeout(() => this.flush(), this.windowMs);
    });
  }

  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
    this.timer = undefined;
    this.immediate = undefined;
    const batch = this.waiting;
    this.waiting = [];
    this.waitingEvents = 0;
    if (batch.length === 0) return;
    const events =
      batch.length === 1 ? (batch[0] as Waiter).events : batch.flatMap((waiter) => waiter.events);
    this.run(events).then(
      () => batch.forEach((waiter) => waiter.resolve()),
      (error: unknown) => batch.forEach((waiter) => waiter.reject(error)),
    );
  }
}
