import { Counter, Gauge, Histogram, latencyBuckets, type Registry } from '@walpurge/core';

type Metric = Counter<string> | Gauge<string> | Histogram<string>;

/**
 * Returns the metric already registered under `name` on this registry, else creates it there, so two
 * listeners (or a listener restarted in the same process, as tests do) share one series set instead
 * of failing with "already registered".
 */
function getOrCreate<M extends Metric>(registry: Registry, name: string, create: () => M): M {
  return (registry.getSingleMetric(name) as M | undefined) ?? create();
}

export function createListenerMetrics(registry: Registry) {
  const registers = [registry];
  return {
    events: getOrCreate(
      registry,
      'walpurge_listener_events_total',
      () =>
        new Counter({
          name: 'walpurge_listener_events_total',
          help: 'Change events decoded, by table and op.',
          labelNames: ['table', 'op'],
          registers,
        }),
    ),
    transactions: getOrCreate(
      registry,
      'walpurge_listener_transactions_total',
      () =>
        new Counter({
          name: 'walpurge_listener_transactions_total',
          help: 'Transactions whose events the sink acknowledged.',
          registers,
        }),
    ),
    receivedBytes: getOrCreate(
      registry,
      'walpurge_listener_received_bytes_total',
      () =>
        new Counter({
          name: 'walpurge_listener_received_bytes_total',
          help: 'pgoutput bytes received from PostgreSQL.',
          registers,
        }),
    ),
    commitToAck: getOrCreate(
      registry,
      'walpurge_listener_commit_to_ack_seconds',
      () =>
        new Histogram({
          name: 'walpurge_listener_commit_to_ack_seconds',
          help: "From a transaction's commit in PostgreSQL to the sink acknowledging all its events.",
          buckets: latencyBuckets,
          registers,
        }),
    ),
    lagBytes: getOrCreate(
      registry,
      'walpurge_listener_replication_lag_bytes',
      () =>
        new Gauge({
          name: 'walpurge_listener_replication_lag_bytes',
          help: "Server WAL position minus the slot's confirmed (durable) LSN.",
          registers,
        }),
    ),
    lagSeconds: getOrCreate(
      registry,
      'walpurge_listener_replication_lag_seconds',
      () =>
        new Gauge({
          name: 'walpurge_listener_replication_lag_seconds',
          help: 'Age of the oldest committed transaction not yet acknowledged by the sink (0 when caught up).',
          registers,
        }),
    ),
    retainedWalBytes: getOrCreate(
      registry,
      'walpurge_listener_slot_retained_wal_bytes',
      () =>
        new Gauge({
          name: 'walpurge_listener_slot_retained_wal_bytes',
          help: 'WAL the server keeps for the slot (current WAL position minus restart_lsn).',
          registers,
        }),
    ),
    safeWalBytes: getOrCreate(
      registry,
      'walpurge_listener_slot_safe_wal_bytes',
      () =>
        new Gauge({
          name: 'walpurge_listener_slot_safe_wal_bytes',
          help: 'WAL that can still be written before max_slot_wal_keep_size invalidates the slot (PostgreSQL 13+; absent when unlimited). Alert when it nears 0.',
          registers,
        }),
    ),
    durableLsn: getOrCreate(
      registry,
      'walpurge_listener_durable_lsn',
      () =>
        new Gauge({
          name: 'walpurge_listener_durable_lsn',
          help: 'Last LSN confirmed to PostgreSQL, as a byte position.',
          registers,
        }),
    ),
    reconnects: getOrCreate(
      registry,
      'walpurge_listener_reconnects_total',
      () =>
        new Counter({
          name: 'walpurge_listener_reconnects_total',
          help: 'Replication sessions restarted after an error, by reason.',
          labelNames: ['reason'],
          registers,
        }),
    ),
    streaming: getOrCreate(
      registry,
      'walpurge_listener_streaming',
      () =>
        new Gauge({
          name: 'walpurge_listener_streaming',
          help: '1 while this instance holds the slot and streams changes; 0 as standby or reconnecting.',
          registers,
        }),
    ),
    pauses: getOrCreate(
      registry,
      'walpurge_listener_backpressure_pauses_total',
      () =>
        new Counter({
          name: 'walpurge_listener_backpressure_pauses_total',
          help: 'Times reading the replication stream was paused because the sink lagged.',
          registers,
        }),
    ),
    pendingEvents: getOrCreate(
      registry,
      'walpurge_listener_pending_events',
      () =>
        new Gauge({
          name: 'walpurge_listener_pending_events',
          help: 'Decoded events not yet acknowledged by the sink.',
          registers,
        }),
    ),
  };
}
export type ListenerMetrics = ReturnType<typeof createListenerMetrics>;

export function createKafkaSinkMetrics(registry: Registry) {
  const registers = [registry];
  return {
    messages: getOrCreate(
      registry,
      'walpurge_kafka_sink_messages_total',
      () =>
        new Counter({
          name: 'walpurge_kafka_sink_messages_total',
          help: 'Change events acknowledged by Kafka.',
          registers,
        }),
    ),
    bytes: getOrCreate(
      registry,
      'walpurge_kafka_sink_bytes_total',
      () =>
        new Counter({
          name: 'walpurge_kafka_sink_bytes_total',
          help: 'Encoded change event bytes acknowledged by Kafka.',
          registers,
        }),
    ),
    sendSeconds: getOrCreate(
      registry,
      'walpurge_kafka_sink_send_seconds',
      () =>
        new Histogram({
          name: 'walpurge_kafka_sink_send_seconds',
          help: 'Duration of one produce call (a batch) until acks from all in-sync replicas.',
          buckets: latencyBuckets,
          registers,
        }),
    ),
    oversized: getOrCreate(
      registry,
      'walpurge_kafka_sink_oversized_events_total',
      () =>
        new Counter({
          name: 'walpurge_kafka_sink_oversized_events_total',
          help: 'Change events too big for one Kafka message, sent without their largest non-key columns.',
          registers,
        }),
    ),
    errors: getOrCreate(
      registry,
      'walpurge_kafka_sink_errors_total',
      () =>
        new Counter({
          name: 'walpurge_kafka_sink_errors_total',
          help: 'Failed produce calls (the listener replays from the last durable LSN).',
          registers,
        }),
    ),
  };
}
export type KafkaSinkMetrics = ReturnType<typeof createKafkaSinkMetrics>;
