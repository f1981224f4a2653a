import { ROOT_CONTEXT, SpanKind, trace, type Context, type Span, type Tracer } from '@opentelemetry/api';
import { recordSpanError } from '@walpurge/core';
import type { ChangeEvent } from '@walpurge/protocol';
import type { ChunkTrace } from './ack-pipeline.js';

/** Span attribute names of `walpurge.transaction` (docs/tracing.md). */
export const TransactionAttributes = {
  commitLsn: 'walpurge.commit_lsn',
  commitTime: 'walpurge.commit_time',
  xid: 'walpurge.xid',
  changes: 'walpurge.change_count',
  tables: 'walpurge.tables',
} as const;

/** A transaction begun but without a change yet: its span starts with the first change. */
interface Begun {
  xid: number;
  lsn: string;
  commitTimeMs: number;
  /** When the begin message arrived: the span's start. */
  startTime: number;
}

/**
 * One `walpurge.transaction` span per transaction the listener reads, from its begin message until
 * the sink acknowledged its last chunk (the AckPipeline ends it): that is when the slot may move
 * past the commit, the moment `walpurge_listener_commit_to_ack_seconds` measures too, and with the
 * inline transport it covers the purges, so the invalidator's batch span nests inside it. Built only
 * when tracing is on. A transaction without changes gets no span: PostgreSQL 13 and 14 send the
 * begin and commit of every transaction, even those touching no published table.
 */
export class TransactionTracing {
  private begun: Begun | undefined;
  private span: Span | undefined;
  private context: Context = ROOT_CONTEXT;
  private changes = 0;
  private readonly tables = new Set<string>();

  constructor(
    private readonly tracer: Tracer,
    private readonly database: string,
  ) {}

  begin(xid: number, lsn: string, commitTimeMs: number): void {
    this.abandon('the transaction was not committed in this session');
    this.begun = { xid, lsn, commitTimeMs, startTime: Date.now() };
    this.changes = 0;
    this.tables.clear();
  }

  changed(events: readonly ChangeEvent[]): void {
    if (events.length === 0) return;
    if (!this.span && this.begun) this.start(this.begun);
    this.changes += events.length;
    for (const event of events) this.tables.add(`${event.source.schema}.${event.source.table}`);
  }

  private start({ xid, lsn, commitTimeMs, startTime }: Begun): void {
    this.begun = undefined;
    this.span = this.tracer.startSpan(
      'walpurge.transaction',
      {
        kind: SpanKind.PRODUCER,
        startTime,
        attributes: {
          'db.system.name': 'postgresql',
          'db.namespace': this.database,
          [TransactionAttributes.commitLsn]: lsn,
          [TransactionAttributes.commitTime]: new Date(commitTimeMs).toISOString(),
          [TransactionAttributes.xid]: xid,
        },
      },
      ROOT_CONTEXT,
    );
    this.context = trace.setSpan(ROOT_CONTEXT, this.span);
  }

  /** The trace of a chunk handed to the sink; the commit's chunk takes the span with it. */
  chunk(commit: boolean): ChunkTrace | undefined {
    const span = this.span;
    if (commit) this.begun = undefined;
    if (!span) return undefined;
    if (!commit) return { context: this.context };
    span.setAttributes({
      [TransactionAttributes.changes]: this.changes,
      [TransactionAttributes.tables]: [...this.tables].sort(),
    });
    this.span = undefined;
    return { context: this.context, span };
  }

  /** Ends the open transaction's span as failed (the session ended before its commit). */
  abandon(reason: unknown): void {
    this.begun = undefined;
    if (!this.span) return;
    recordSpanError(this.span, reason);
    this.span.end();
    this.span = undefined;
  }
}
