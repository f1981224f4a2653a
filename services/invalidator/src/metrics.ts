import { Counter, Gauge, Histogram, latencyBuckets, type Registry } from '@walpurge/core';

export type InvalidatorMetrics = ReturnType<typeof createInvalidatorMetrics>;

export function createInvalidatorMetrics(registry: Registry) {
  const registers = [registry];
  return {
    events: new Counter({
      name: 'walpurge_invalidator_events_total',
      help: 'Change events handled, by operation.',
      labelNames: ['op'],
      registers,
    }),
    purges: new Counter({
      name: 'walpurge_invalidator_purges_total',
      help: 'Purged entries (after coalescing) by target, kind and outcome (success | failure; failures are retried).',
      labelNames: ['target', 'kind', 'outcome'],
      registers,
    }),
    echoKept: new Counter({
      name: 'walpurge_invalidator_echo_kept_total',
      help: "Entries of the write-behind flusher's own commits (CDC echo) kept because the cache already held the committed version or a newer one: read-your-writes at work. By target.",
      labelNames: ['target'],
      registers,
    }),
    purgeRetries: new Counter({
      name: 'walpurge_invalidator_purge_retries_total',
      help: 'Purge attempts retried, by target.',
      labelNames: ['target'],
      registers,
    }),
    purgeDuration: new Histogram({
      name: 'walpurge_invalidator_purge_duration_seconds',
      help: 'Time to purge one coalesced batch on one target, retries included.',
      labelNames: ['target'],
      buckets: latencyBuckets,
      registers,
    }),
    endToEndLag: new Histogram({
      name: 'walpurge_invalidator_end_to_end_lag_seconds',
      help: 'Database commit → Redis purges done and CDN purges queued, per event (now − commitTs); CDN purges trail by walpurge_cdn_queue_oldest_age_seconds.',
      buckets: latencyBuckets,
      registers,
    }),
    entriesPlanned: new Counter({
      name: 'walpurge_invalidator_entries_planned_total',
      help: 'Entries the rules derived from events, before coalescing.',
      registers,
    }),
    entriesSent: new Counter({
      name: 'walpurge_invalidator_entries_sent_total',
      help: 'Distinct entries sent to targets after coalescing.',
      registers,
    }),
    coalescingRatio: new Gauge({
      name: 'walpurge_invalidator_coalescing_ratio',
      help: 'Planned ÷ sent entries of the last batch (≥ 1; higher means more duplicates saved).',
      registers,
    }),
    unknownValues: new Counter({
      name: 'walpurge_invalidator_unknown_values_total',
      help: 'Templates that could not be rendered (unchanged TOAST, missing old value, truncate, a value that would widen the purge), by rule and reason.',
      labelNames: ['rule', 'reason', 'fallback'],
      registers,
    }),
    skipped: new Counter({
      name: 'walpurge_invalidator_events_without_purge_total',
      help: 'Events that purged nothing (no rule, op or when.changed filter).',
      registers,
    }),
    deadLetters: new Counter({
      name: 'walpurge_invalidator_dead_letters_total',
      help: 'Messages sent to the dead-letter topic, by reason.',
      labelNames: ['reason'],
      registers,
    }),
    deadLettersTruncated: new Counter({
      name: 'walpurge_invalidator_dead_letters_truncated_total',
      help: 'Dead letters too large for the dead-letter topic, sent with the value replaced by a stub (x-walpurge-truncated), by reason and trigger (limit: kafka.maxMessageBytes; broker: the topic refused the size).',
      labelNames: ['reason', 'trigger'],
      registers,
    }),
    rejectedEvents: new Counter({
      name: 'walpurge_invalidator_rejected_events_total',
      help: 'Events whose purge a target rejected for good (not retriable), by transport: kafka → also on the dead-letter topic; inline → logged in full at error level.',
      labelNames: ['transport'],
      registers,
    }),
    consumerLag: new Gauge({
      name: 'walpurge_invalidator_consumer_lag_messages',
      help: 'Messages behind the partition high watermark after the last processed batch.',
      labelNames: ['topic', 'partition'],
      registers,
    }),
    batchEvents: new Histogram({
      name: 'walpurge_invalidator_batch_events',
      help: 'Events per coalesced purge batch.',
      buckets: [1, 5, 10, 50, 100, 250, 500, 1000, 5000],
      registers,
    }),
  };
}
