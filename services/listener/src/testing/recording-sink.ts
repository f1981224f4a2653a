import type { ChangeEvent } from '@walpurge/protocol';
import type { ListenerSink } from '../listener.js';

/**
 * In-memory sink for tests and embedding: records every published call, can be made to fail or to
 * block, so tests can check chunking, backpressure and acknowledgement without Kafka.
 */
export class RecordingSink implements ListenerSink {
  readonly calls: ChangeEvent[][] = [];
  /** When set, publish rejects with it (once per call) instead of recording. */
  failWith: Error | undefined;
  private gate: Promise<void> | undefined;
  private openGate: (() => void) | undefined;
  private waiters: Array<{ count: number; resolve: () => void }> = [];
  private recorded = 0;

  get events(): ChangeEvent[] {
    return this.calls.flat();
  }

  async publish(events: readonly ChangeEvent[]): Promise<void> {
    if (this.gate) await this.gate;
    if (this.failWith) throw this.failWith;
    this.calls.push([...events]);
    this.recorded += events.length;
    const total = this.recorded;
    this.waiters = this.waiters.filter((waiter) => {
      if (total < waiter.count) return true;
      waiter.resolve();
      return false;
    });
  }

  /** Makes publish calls wait until `release()`. */
  block(): void {
    this.gate ??= new Promise((resolve) => {
      this.openGate = resolve;
    });
  }

  release(): void {
    this.openGate?.();
    this.gate = undefined;
    this.openGate = undefined;
  }

  /** Resolves once at least `count` events were recorded. */
  waitForEvents(count: number, timeoutMs = 30_000): Promise<ChangeEvent[]> {
    if (this.recorded >= count) return Promise.resolve(this.events);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`timed out waiting for ${count} events (have ${this.recorded})`)),
        timeoutMs,
      );
      this.waiters.push({
        count,
        resolve: () => {
          clearTimeout(timer);
          resolve(this.events);
        },
      });
    });
  }

  clear(): void {
    this.calls.length = 0;
    this.recorded = 0;
  }
}
