/**
 * Listener benchmark (not part of the test suite): PostgreSQL → listener → Kafka on this machine.
 *
 *   npm run bench:listener        (BENCH_* variables below change the parameters)
 *
 * Phase 1 (throughput): BENCH_CHANGES row inserts committed as fast as one client can, in
 * transactions of BENCH_TX_ROWS rows; sustained changes/s = changes / (first commit → Kafka acked the
 * last); one writer may be the limit, so then the same number of changes is committed while the
 * listener is stopped and a new listener's catch-up is timed (listener + Kafka alone). Phase 2 (latency): BENCH_RATE changes/s for BENCH_RATE_SECONDS in transactions of
 * BENCH_RATE_TX_ROWS rows; commit → Kafka-ack latency of every transaction (PostgreSQL's commit
 * timestamp to the producer's acknowledgement, same clock). Uses WALPURGE_TEST_* services when set,
 * else starts local ones (@walpurge/testing).
 */
import pg from 'pg';
import { WalpurgeConfig } from '@walpurge/config';
import { createLogger, createMetricsRegistry, type Registry } from '@walpurge/core';
import { createKafkaSink, createListener, type Listener, type ListenerSink } from '@walpurge/listener';
import type { ChangeEvent } from '@walpurge/protocol';
import {
  KAFKA_VERSION,
  createIsolatedDatabase,
  startTestEnvironment,
  uniqueName,
  waitFor,
} from '@walpurge/testing';
import {
  cpuSecondsSince,
  deleteTopics,
  describeDistribution,
  distribution,
  envNumber,
  kafkaClientFromEnv,
  loadLine,
  machineLine,
  peakRssLine,
  paced,
  rate,
} from './support/report.js';

const CHANGES = envNumber('BENCH_CHANGES', 200_000);
const TX_ROWS = envNumber('BENCH_TX_ROWS', 500);
const RATE = envNumber('BENCH_RATE', 5000);
const RATE_SECONDS = envNumber('BENCH_RATE_SECONDS', 20);
const RATE_TX_ROWS = envNumber('BENCH_RATE_TX_ROWS', 10);
const PARTITIONS = envNumber('BENCH_PARTITIONS', 6);
/** BENCH_PRODUCER_THREAD=1: the producer in its own thread (kafka.producerThread: true). */
const PRODUCER_THREAD = process.env['BENCH_PRODUCER_THREAD'] === '1';
/** BENCH_KAFKA_CLIENT=platformatic: the listener's producer on @platformatic/kafka (kafka.producerClient). */
const KAFKA_CLIENT = kafkaClientFromEnv();

async function main(): Promise<void> {
  const loadBefore = loadLine('before');
  const env = await startTestEnvironment({ redis: false, log: () => {} });
  const { databaseUrl, kafkaBrokers } = env.urls as { databaseUrl: string; kafkaBrokers: string[] };
  const db = await createIsolatedDatabase(databaseUrl, 'bench');
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  await client.query('CREATE TABLE bench (id bigint PRIMARY KEY, v int NOT NULL, payload text NOT NULL)');
  const serverVersion = (await client.query<{ v: string }>("SELECT current_setting('server_version') AS v"))
    .rows[0]?.v;

  const logger = createLogger({ level: process.env['LOG_LEVEL'] ?? 'warn', pretty: false });
  const slot = uniqueName('bench');
  const config = WalpurgeConfig.parse({
    transport: 'kafka',
    database: {
      url: db.url,
      slot,
      publication: slot,
      tables: ['bench'],
      heartbeatIntervalMs: 0,
      statusIntervalMs: 1000,
    },
    kafka: {
      brokers: kafkaBrokers,
      topic: slot,
      partitions: PARTITIONS,
      producerThread: PRODUCER_THREAD,
      producerClient: KAFKA_CLIENT,
    },
  });

  // Wraps the real Kafka sink to time each transaction from its commit to Kafka's acknowledgement.
  let acked = 0;
  let recordLatency: ((ms: number) => void) | undefined;
  const timedSink = (registry: Registry): ListenerSink => {
    const kafka = createKafkaSink({ config: config.kafka!, logger, registry });
    return {
      // What the listener asks of the real sink is forwarded: how many calls it takes in flight
      // and how it weighs events against the memory budget.
      preservesCallOrder: true,
      maxCallsInFlight: kafka.maxCallsInFlight,
      eventBytes: (event, traced) => kafka.eventBytes(event, traced),
      connect: () => kafka.connect(),
      close: () => kafka.close(),
      async publish(events: readonly ChangeEvent[], signal?: AbortSignal) {
        await kafka.publish(events, signal);
        const ackedAt = Date.now();
        acked += events.length;
        if (!recordLatency) return;
        // One sample per transaction (a batch may span several; a huge one spans several batches:
        // its last batch's acknowledgement is when the transaction is durable).
        for (let i = 0; i < events.length; i += 1) {
          const event = events[i] as ChangeEvent;
          if (events[i + 1]?.source.lsn !== event.source.lsn)
            recordLatency(ackedAt - Date.parse(event.source.commitTs));
        }
      },
    };
  };
  const startListener = async (): Promise<Listener> => {
    // A fresh registry per instance: metrics are registered once per registry.
    const registry = createMetricsRegistry({ defaultMetrics: false });
    const started = createListener({
      config,
      logger,
      registry,
      sink: timedSink(registry),
      onFatal: (error) => {
        throw error;
      },
    });
    await started.start(new AbortController().signal);
    await waitFor('listener streaming', async () => started.isReady(), { timeoutMs: 60_000 });
    return started;
  };
  let listener = await startListener();

  // Phase 1: throughput.
  let nextId = 0;
  const insertTx = async (rows: number): Promise<void> => {
    await client.query(
      "INSERT INTO bench SELECT g, 0, 'payload-' || g FROM generate_series($1::bigint, $2::bigint) g",
      [nextId + 1, nextId + rows],
    );
    nextId += rows;
  };
  const started = performance.now();
  for (let written = 0; written < CHANGES; written += TX_ROWS)
    await insertTx(Math.min(TX_ROWS, CHANGES - written));
  const writeSeconds = (performance.now() - started) / 1000;
  await waitFor('all changes acknowledged by Kafka', async () => acked >= CHANGES, {
    timeoutMs: 600_000,
    intervalMs: 20,
  });
  const throughputSeconds = (performance.now() - started) / 1000;
  const loadAfterThroughput = loadLine('after the live throughput phase');

  // Phase 1b: catch-up. With the listener stopped the changes wait in the slot; a new listener then
  // streams them as fast as it can decode and Kafka can acknowledge (the writer is out of the way).
  await listener.stop();
  const backlogFrom = acked;
  for (let written = 0; written < CHANGES; written += TX_ROWS)
    await insertTx(Math.min(TX_ROWS, CHANGES - written));
  const catchUpStarted = performance.now();
  // The writer is idle: this process's CPU is the listener's (and its producer's) alone.
  const catchUpCpu = process.cpuUsage();
  listener = await startListener();
  await waitFor('backlog acknowledged by Kafka', async () => acked - backlogFrom >= CHANGES, {
    timeoutMs: 600_000,
    intervalMs: 20,
  });
  const catchUpSeconds = (performance.now() - catchUpStarted) / 1000;
  const catchUpCpuSeconds = cpuSecondsSince(catchUpCpu);
  const loadAfterCatchUp = loadLine('after the catch-up phase');

  // Phase 2: latency at a fixed rate.
  const latencies: number[] = [];
  recordLatency = (ms) => latencies.push(ms);
  const target = acked + RATE * RATE_SECONDS;
  const ticks = Math.round((RATE * RATE_SECONDS) / RATE_TX_ROWS);
  const rateSeconds = await paced(ticks, (1000 * RATE_TX_ROWS) / RATE, () => insertTx(RATE_TX_ROWS));
  await waitFor('rate phase acknowledged', async () => acked >= target, {
    timeoutMs: 120_000,
    intervalMs: 20,
  });
  recordLatency = undefined;

  const lines = [
    'walpurge listener benchmark — PostgreSQL → listener → Kafka (acks=all, idempotent producer)',
    machineLine(),
    `services: PostgreSQL ${serverVersion}, Kafka ${KAFKA_VERSION} (${env.providers['kafka']}), all on this machine`,
    loadBefore,
    loadAfterThroughput,
    loadAfterCatchUp,
    loadLine('at the end'),
    `parameters: ${CHANGES} inserts in transactions of ${TX_ROWS} rows, ${PARTITIONS} partitions, producer ${KAFKA_CLIENT} ${PRODUCER_THREAD ? 'in its own thread' : 'on the main thread'}; then ${RATE} changes/s for ${RATE_SECONDS} s in transactions of ${RATE_TX_ROWS} rows`,
    `throughput: ${rate(CHANGES, throughputSeconds)} changes/s sustained (${CHANGES} changes acknowledged by Kafka ${throughputSeconds.toFixed(2)} s after the first commit; the writer alone took ${writeSeconds.toFixed(2)} s)`,
    `catch-up: ${rate(CHANGES, catchUpSeconds)} changes/s (a backlog of ${CHANGES} changes streamed and acknowledged by Kafka ${catchUpSeconds.toFixed(2)} s after a new listener started, connection and slot setup included; ${((catchUpCpuSeconds / CHANGES) * 1e6).toFixed(1)} CPU-s per million changes, ${catchUpCpuSeconds.toFixed(1)} CPU-s in all)`,
    `latency at ${rate(ticks * RATE_TX_ROWS, rateSeconds)} changes/s (commit → Kafka ack per transaction): ${describeDistribution(distribution(latencies))}`,
    peakRssLine(),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);

  await listener.stop();
  await client.end();
  await db.drop();
  await deleteTopics(kafkaBrokers, [slot]);
  await env.stop();
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
