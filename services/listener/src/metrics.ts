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

/** Which slot a slot gauge describes: two walpurge instances (or slots) side by side stay apart. */
export interface SlotLabels {
  slot: string;
  /** The database the slot belongs to (current_database() of the listener's connection). */
  database: string;
}
type SlotLabel = keyof SlotLabels;

/**
 * A gauge about the slot this instance streams from, labelled with the slot and its database. It
 * reports nothing until a streaming session sets it (see clearStreamingGauges), so a standby pod
 * never shows a lag or a safe-WAL figure of its own.
 */
// Takes `{ name, help }` like prom-client itself, which also keeps the names greppable for the
// deploy tests that check every metric an alert or dashboard uses exists in the code.
function slotGauge(registry: Registry, { name, help }: { name: string; help: string }): Gauge<SlotLabel> {
  return getOrCreate(
    registry,
    name,
    () => new Gauge<SlotLabel>({ name, help, labelNames: ['slot', 'database'], registers: [registry] }),
  );
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
    unresolvedRelations: getOrCreate(
      registry,
      'walpurge_listener_unresolved_relations_total',
      () =>
        new Counter({
          name: 'walpurge_listener_unresolved_relations_total',
          help: 'Relations streamed that are neither a publication member nor a partition any more (a partition detached or dropped before its changes were read): their changes keep the partition name, so rules on the partitioned table miss them.',
          labelNames: ['table'],
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
    lagBytes: slotGauge(registry, {
      name: 'walpurge_listener_replication_lag_bytes',
      help: "Server WAL position minus the slot's confirmed (durable) LSN.",
    }),
    lagSeconds: slotGauge(registry, {
      name: 'walpurge_listener_replication_lag_seconds',
      help: 'Age of the oldest committed transaction not yet acknowledged by the sink (0 when caught up); while PostgreSQL has been silent for more than 1.5 status intervals, the silence instead when longer (changes may be waiting behind a dead connection).',
    }),
    retainedWalBytes: slotGauge(registry, {
      name: 'walpurge_listener_slot_retained_wal_bytes',
      help: 'WAL the server keeps for the slot (current WAL position minus restart_lsn).',
    }),
    safeWalBytes: slotGauge(registry, {
      name: 'walpurge_listener_slot_safe_wal_bytes',
      help: 'WAL that can still be written before max_slot_wal_keep_size invalidates the slot (PostgreSQL 13+; absent when unlimited). Alert when it nears 0.',
    }),
    durableLsn: slotGauge(registry, {
      name: 'walpurge_listener_durable_lsn',
      help: 'Last LSN confirmed to PostgreSQL, as a byte position.',
    }),
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
    silentConnections: getOrCreate(
      registry,
      'walpurge_listener_silent_connections_total',
      () =>
        new Counter({
          name: 'walpurge_listener_silent_connections_total',
          help: 'Replication connections dropped because PostgreSQL sent nothing (data or keepalive) for database.deadAfterIntervals status intervals: a dead, half-open connection (failover, partition).',
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
    pendingEvents: slotGauge(registry, {
      name: 'walpurge_listener_pending_events',
      help: 'Decoded events not yet acknowledged by the sink.',
    }),
    pendingBytes: slotGauge(registry, {
      name: 'walpurge_listener_pending_bytes',
      help: 'Size of the decoded events not yet acknowledged by the sink, as database.maxPendingBytes counts it (Kafka: record bytes; inline: JSON length).',
    }),
  };
}
export type ListenerMetrics = ReturnType<typeof createListenerMetrics>;

/** The slot gauges of ListenerMetrics. */
const SLOT_GAUGES = [
  'lagBytes',
  'lagSeconds',
  'retainedWalBytes',
  'safeWalBytes',
  'durableLsn',
  'pendingEvents',
  'pendingBytes',
] as const;
type SlotGaugeKey = (typeof SLOT_GAUGES)[number];

/** The metrics one streaming session writes: the slot gauges bound to that session's slot. */
export type SessionMetrics = Omit<ListenerMetrics, SlotGaugeKey> &
  Record<SlotGaugeKey, Gauge.Internal<SlotLabel>>;

export function sessionMetrics(metrics: ListenerMetrics, labels: SlotLabels): SessionMetrics {
  const bound = Object.fromEntries(SLOT_GAUGES.map((key) => [key, metrics[key].labels(labels)])) as Record<
    SlotGaugeKey,
    Gauge.Internal<SlotLabel>
  >;
  return { ...metrics, ...bound };
}

/**
 * Called whenever this instance stops streaming (stop, reconnect, slot taken over: standby). The
 * slot gauges describe a slot this instance no longer reads: kept, they would go on reporting the
 * last lag, retained WAL or safe-WAL figure of a stopped or standby pod, and alerts on max() or on
 * `safe_wal_bytes` nearing 0 would read them. So that slot's series are removed (no sample until
 * the next session sets them), not zeroed: 0 safe WAL bytes would itself be an alarm. `streaming`
 * stays, at 0.
 */
export function clearStreamingGauges(metrics: ListenerMetrics, labels: SlotLabels): void {
  metrics.streaming.set(0);
  for (const key of SLOT_GAUGES) metrics[key].remove(labels);
}
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
