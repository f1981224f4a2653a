import { context, type Context, type Span } from '@opentelemetry/api';
import { recordSpanError } from '@walpurge/core';
import type { ChangeEvent, ChangeSink } from '@walpurge/protocol';

export interface AckPipelineOptions {
  sink: ChangeSink;
  /**
   * Sink calls allowed in flight at once. 1 unless the sink guarantees that overlapping calls become
   * durable in call order (the Kafka sink does: it sends them sequentially, batched together).
   */
  maxConcurrent: number;
  signal?: AbortSignal;
  /** A commit (or an idle keepalive position) whose events, and everything before, are durable. */
  onDurable(lsn: bigint, commitTimeMs: number | undefined): void;
  /** First sink failure; nothing after it is published and nothing after it becomes durable. */
  onFailure(error: unknown): void;
  /** An item settled: pending events went down (the session may resume reading). */
  onProgress?(): void;
}

interface Item {
  /** Emptied once acknowledged: a finished item must not keep its events alive until compaction. */
  events: readonly ChangeEvent[];
  /** Encoded size of `events` (see pendingEventBytes), released with them. */
  bytes: number;
  /** Set on a transaction's last chunk (its commit end LSN) and on idle markers. */
  ackLsn: bigint | undefined;
  /** Commit time of the chunk's transaction (on every chunk of it; none on idle markers). */
  commitTimeMs: number | undefined;
  state: 'waiting' | 'publishing' | 'done' | 'failed';
  /** Tracing on: the context the sink is called in (its transaction's span), see ChunkTrace. */
  trace: Context | undefined;
  /** Tracing on, a transaction's last chunk: its span, ended once the commit is durable. */
  span: Span | undefined;
  /** Position in push order, for its index in `items` (see AckPipeline.base). */
  seq: number;
}

/** The transaction span a chunk belongs to; `span` only on the transaction's last chunk. */
export interface ChunkTrace {
  context: Context;
  span?: Span;
}

const NO_EVENTS: readonly ChangeEvent[] = [];

/**
 * Ordered hand-off of event chunks to the sink. A position becomes durable only when the chunk that
 * carries it and every chunk before it were acknowledged, so the slot never moves past a change
 * that is not safe downstream, however sink calls overlap or finish.
 */
export class AckPipeline {
  private readonly items: Item[] = [];
  /** Sequence number of items[0]: an item's index is its `seq` minus this (no search per settle). */
  private base = 0;
  /** Items [spansFailedFrom, spansFailedTo) have had their spans ended as failed (none: undefined). */
  private spansFailedFrom: number | undefined;
  private spansFailedTo = 0;
  private head = 0;
  private nextToStart = 0;
  private inFlight = 0;
  private pending = 0;
  private pendingByteCount = 0;
  private failed = false;
  private drainWaiters: Array<() => void> = [];

  constructor(private readonly options: AckPipelineOptions) {}

  /** Events handed over but not yet acknowledged (memory held for them). */
  get pendingEvents(): number {
    return this.pending;
  }

  /** Encoded size of the events handed over but not yet acknowledged (the memory budget's measure). */
  get pendingBytes(): number {
    return this.pendingByteCount;
  }

  get isEmpty(): boolean {
    return this.head === this.items.length;
  }

  get hasFailed(): boolean {
    return this.failed;
  }

  /** Commit time of the oldest transaction not yet durable, for the lag-in-seconds gauge. */
  oldestPendingCommitTimeMs(): number | undefined {
    for (let i = this.head; i < this.items.length; i += 1) {
      const time = (this.items[i] as Item).commitTimeMs;
      if (time !== undefined) return time;
    }
    return undefined;
  }

  /**
   * `bytes`: the events' encoded size, counted in pendingBytes until the sink acknowledges them.
   * `trace` (tracing on): the sink is called in its context, and its span (on a transaction's last
   * chunk) ends when the commit is durable, or fails with the pipeline.
   */
  push(
    events: readonly ChangeEvent[],
    ackLsn?: bigint,
    commitTimeMs?: number,
    bytes = 0,
    trace?: ChunkTrace,
  ): void {
    if (this.failed) {
      if (trace?.span) endFailed(trace.span, 'the sink failed before this transaction was handed over');
      return;
    }
    const empty = events.length === 0;
    this.items.push({
      events,
      bytes,
      ackLsn,
      commitTimeMs,
      state: empty ? 'done' : 'waiting',
      trace: trace?.context,
      span: trace?.span,
      seq: this.base + this.items.length,
    });
    this.pending += events.length;
    this.pendingByteCount += bytes;
    if (empty) this.completeHead();
    this.startMore();
  }

  /** Ends, as failed, the spans of transactions that will not become durable (the session ends). */
  abandonSpans(reason: unknown): void {
    this.failSpansFrom(this.head, reason);
  }

  /**
   * Ends the spans from `start` on as failed. Every item behind a failure fails with it: the range
   * already ended is remembered, so thousands of calls failing one after the other cost one pass
   * over the items, not one each.
   */
  private failSpansFrom(start: number, reason: unknown): void {
    const from = this.spansFailedFrom;
    if (from === undefined) {
      this.failSpans(start, this.items.length, reason);
    } else {
      this.failSpans(start, from, reason);
      this.failSpans(this.spansFailedTo, this.items.length, reason);
    }
    this.spansFailedFrom = Math.min(start, from ?? start);
    this.spansFailedTo = this.items.length;
  }

  private failSpans(start: number, end: number, reason: unknown): void {
    for (let i = start; i < end; i += 1) {
      const item = this.items[i] as Item;
      if (item.span) endFailed(item.span, reason);
      item.span = undefined;
    }
  }

  /** Resolves once no sink call is in flight (after a failure or when stopping). */
  drained(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  private startMore(): void {
    while (
      !this.failed &&
      this.inFlight < this.options.maxConcurrent &&
      this.nextToStart < this.items.length
    ) {
      const item = this.items[this.nextToStart] as Item;
      this.nextToStart += 1;
      if (item.state !== 'waiting') continue;
      item.state = 'publishing';
      this.inFlight += 1;
      let publishing: Promise<void>;
      try {
        // The sink sees the transaction's span as the active one: the Kafka sink puts it in the
        // records' traceparent header, the inline invalidator makes its batch span a child of it.
        const { sink, signal } = this.options;
        publishing = item.trace
          ? context.with(item.trace, () => sink.publish(item.events, signal))
          : sink.publish(item.events, signal);
      } catch (error) {
        publishing = Promise.reject(error);
      }
      publishing.then(
        () => this.settle(item, undefined),
        (error: unknown) => this.settle(item, error ?? new Error('sink rejected without a reason')),
      );
    }
  }

  private settle(item: Item, error: unknown): void {
    this.inFlight -= 1;
    if (error === undefined) {
      item.state = 'done';
      this.pending -= item.events.length;
      this.pendingByteCount -= item.bytes;
      item.events = NO_EVENTS;
      item.bytes = 0;
      this.completeHead();
    } else {
      item.state = 'failed';
      // No transaction from this chunk on becomes durable in this session: their spans end failed.
      // Earlier chunks still in flight may yet succeed, and their spans end as usual.
      this.failSpansFrom(Math.max(this.head, item.seq - this.base), error);
      if (!this.failed) {
        this.failed = true;
        this.options.onFailure(error);
      }
    }
    if (this.inFlight === 0) {
      const waiters = this.drainWaiters;
      this.drainWaiters = [];
      for (const resolve of waiters) resolve();
    }
    this.options.onProgress?.();
    this.startMore();
  }

  private completeHead(): void {
    while (this.head < this.items.length) {
      const item = this.items[this.head] as Item;
      if (item.state !== 'done') break;
      this.head += 1;
      item.span?.end();
      item.span = undefined;
      item.trace = undefined;
      if (item.ackLsn !== undefined) this.options.onDurable(item.ackLsn, item.commitTimeMs);
    }
    // Compact now and then so a long-running session does not keep every finished item.
    if (this.head > 256 && this.head * 2 > this.items.length) {
      this.items.splice(0, this.head);
      this.nextToStart = Math.max(0, this.nextToStart - this.head);
      this.base += this.head;
      if (this.spansFailedFrom !== undefined) {
        this.spansFailedFrom = Math.max(0, this.spansFailedFrom - this.head);
        this.spansFailedTo = Math.max(0, this.spansFailedTo - this.head);
      }
      this.head = 0;
    }
  }
}

function endFailed(span: Span, error: unknown): void {
  recordSpanError(span, error);
  span.end();
}
