import { Counter, Gauge, Histogram, latencyBuckets, type Registry } from '@walpurge/core';
import type { SweepObserver } from './targets/redis/pattern-sweeper.js';
import { changeLogGapMetrics } from './kafka/change-log-gap-metrics.js';

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
    namespacesAlreadyNewer: new Counter({
      name: 'walpurge_invalidator_namespace_bumps_already_newer_total',
      help: "Namespace bumps that left the version as it was, because it already was the change's commit LSN or newer (a replay, or a later change of another partition bumped it first). By target.",
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
      help: 'Dead letters stored (the dead-letter topic with Kafka, database.deadLetterTable inline), by reason.',
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
      help: 'Events whose purge a target rejected for good (not retriable), by transport: kafka → also on the dead-letter topic; inline → also in database.deadLetterTable (logged in full at error level either way).',
      labelNames: ['transport'],
      registers,
    }),
    consumerLag: new Gauge({
      name: 'walpurge_invalidator_consumer_lag_messages',
      help: 'Messages behind the partition high watermark: after each processed batch, and from the brokers every stallTimeoutMs / 5 (so a consumer that stopped fetching still shows its lag).',
      labelNames: ['topic', 'partition'],
      registers,
    }),
    consumerStalls: new Counter({
      name: 'walpurge_invalidator_consumer_stalls_total',
      help: 'Times the Kafka consumer was found fetching nothing while its partitions had changes waiting (invalidator.stallTimeoutMs), and was restarted.',
      labelNames: ['topic'],
      registers,
    }),
    ...changeLogGapMetrics(registry),
    sweepDuration: new Histogram({
      name: 'walpurge_redis_sweep_duration_seconds',
      help: 'Duration of one pattern sweep (a SCAN walk of every Redis master serving every pattern pending when it started), by outcome (success | failure).',
      labelNames: ['outcome'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      registers,
    }),
    sweepKeysScanned: new Counter({
      name: 'walpurge_redis_sweep_keys_scanned_total',
      help: 'Keys pattern sweeps walked: the DBSIZE of each master as its sweep starts (SCAN visits every key, matching or not).',
      registers,
    }),
    sweepPatterns: new Histogram({
      name: 'walpurge_redis_sweep_patterns',
      help: 'Distinct patterns one sweep served.',
      buckets: [1, 2, 5, 10, 25, 50, 100, 250, 1000, 5000],
      registers,
    }),
    sweepKeysUnlinked: new Counter({
      name: 'walpurge_redis_sweep_keys_unlinked_total',
      help: 'Keys unlinked because they matched a pattern.',
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

/** The Redis target's pattern sweeps, reported into these metrics. */
export function sweepObserver(metrics: InvalidatorMetrics): SweepObserver {
  return {
    sweepDone: (outcome, seconds, patterns) => {
      metrics.sweepDuration.observe({ outcome }, seconds);
      if (outcome === 'success') metrics.sweepPatterns.observe(patterns);
    },
    keysScanned: (count) => metrics.sweepKeysScanned.inc(count),
    keysUnlinked: (count) => metrics.sweepKeysUnlinked.inc(count),
  };
}
