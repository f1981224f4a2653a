import { Counter, Gauge, Histogram, latencyBuckets, type Registry } from '@walpurge/core';

export type FlusherMetrics = ReturnType<typeof createFlusherMetrics>;

/** Values read when the registry is scraped, not by the periodic refresh. */
export interface FlusherMetricSources {
  /** Seconds the batch in flight has been held back (Batcher.heldSeconds); 0 when none is. */
  heldSeconds: () => number;
}

export function createFlusherMetrics(registry: Registry, sources: FlusherMetricSources) {
  const registers = [registry];
  return {
    queueJobs: new Gauge({
      name: 'walpurge_flusher_queue_jobs',
      help: 'Flush jobs in the write-behind queue by state (waiting, active, delayed, failed).',
      labelNames: ['state'] as const,
      registers,
    }),
    pendingRows: new Gauge({
      name: 'walpurge_flusher_pending_rows',
      help: 'Rows with a write accepted but not yet written to PostgreSQL (queue depth in rows).',
      registers,
    }),
    oldestPendingAge: new Gauge({
      name: 'walpurge_flusher_oldest_pending_age_seconds',
      help: 'Age of the oldest write accepted but not yet written to PostgreSQL.',
      registers,
    }),
    // Queue-wide totals kept in the queue Redis (every flusher pod reports the same value: aggregate
    // them with max, not sum). Absent until the first refresh has read them. Their rates' quotient is the write coalescing: accepted writes per row
    // write, derived in PromQL rather than exported as a ratio that cannot be aggregated.
    queueWritesAccepted: new QueueTotalCounter({
      name: 'walpurge_flusher_queue_writes_accepted_total',
      help: 'Write-behind writes accepted by all clients since the queue was created (kept in the queue Redis; the same on every flusher).',
      registers,
    }),
    queueRowsWritten: new QueueTotalCounter({
      name: 'walpurge_flusher_queue_rows_written_total',
      help: 'Row writes all flushers sent to PostgreSQL since the queue was created (kept in the queue Redis; the same on every flusher).',
      registers,
    }),
    batchHeld: new Gauge({
      name: 'walpurge_flusher_batch_held_seconds',
      help: 'How long the batch in flight has been retried without limit because the database is unreachable or refuses every write for a server-wide reason (read-only, disk full, a lock held past lock_timeout); 0 when writes go through.',
      registers,
      // At scrape time: the periodic refresh waits on the queue Redis (which retries without
      // limit), so a value it set would freeze during a queue Redis outage.
      collect() {
        this.set(sources.heldSeconds());
      },
    }),
    rowsFlushed: new Counter({
      name: 'walpurge_flusher_rows_flushed_total',
      help: 'Pending rows written to PostgreSQL and settled by this process.',
      registers,
    }),
    rowsApplied: new Counter({
      name: 'walpurge_flusher_rows_applied_total',
      help: 'Row writes PostgreSQL applied (the rest were older than the row it already had).',
      registers,
    }),
    batchSplits: new Counter({
      name: 'walpurge_flusher_batch_splits_total',
      help: 'Batches (or halves of one) PostgreSQL refused for good and that were halved to find the refused row.',
      registers,
    }),
    batches: new Counter({ name: 'walpurge_flusher_batches_total', help: 'Batches committed.', registers }),
    batchRows: new Histogram({
      name: 'walpurge_flusher_batch_rows',
      help: 'Rows per committed batch.',
      buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000],
      registers,
    }),
    flushDuration: new Histogram({
      name: 'walpurge_flusher_flush_duration_seconds',
      help: 'Time to write one batch to PostgreSQL (transaction, including per-row isolation after a refusal).',
      buckets: latencyBuckets,
      registers,
    }),
    writeLatency: new Histogram({
      name: 'walpurge_flusher_write_latency_seconds',
      help: 'From the oldest unflushed write of a row to its commit in PostgreSQL.',
      buckets: latencyBuckets,
      registers,
    }),
    failures: new Counter({
      name: 'walpurge_flusher_failures_total',
      help: 'Flush failures: permanent (row failed, kept for redrive), transient (retried), unexpected, cache_purge (a refused value could not be removed from the cache).',
      labelNames: ['kind'] as const,
      registers,
    }),
    requeued: new Counter({
      name: 'walpurge_flusher_requeued_total',
      help: 'Jobs queued again: the row changed while being flushed or failing (changed), had no job (reconcile), or waits for a parent row (foreign_key).',
      labelNames: ['reason'] as const,
      registers,
    }),
  };
}

/**
 * A counter mirroring a total kept elsewhere (the queue Redis); prom-client counters only go up by
 * inc(). Exposes no sample until setTotal() was first called: prom-client would show 0 from creation,
 * and a scrape before the first refresh (which waits on BullMQ and the queue Redis) would record 0
 * then N, a spike of N in rate() on every start. Should the total ever drop (the queue was deleted),
 * Prometheus sees a counter reset, as it would after a restart.
 */
export class QueueTotalCounter extends Counter {
  constructor(configuration: ConstructorParameters<typeof Counter>[0]) {
    super(configuration);
    // An unlabelled counter starts with a 0 sample; removing it leaves none until setTotal().
    this.remove();
  }

  setTotal(total: number): void {
    this.reset();
    this.inc(Math.max(0, total));
  }
}
