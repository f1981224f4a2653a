/**
 * Listener benchmark (not part of the test suite): PostgreSQL → listener → Kafka on this machine.
 *
 *   npx tsx test/bench/listener.bench.ts
 *
 * Phase 1 (throughput): BENCH_CHANGES row inserts committed as fast as one client can, in
 * transactions of BENCH_TX_ROWS rows; sustained changes/s = changes / (first commit → Kafka acked the
 * last). Phase 2 (latency): BENCH_RATE changes/s for BENCH_RATE_SECONDS in small transactions;
 * commit → Kafka-ack latency per transaction (p50/p99/max). Uses WALPURGE_TEST_* services when set,
 * else starts local ones (@walpurge/testing).
 */
import os from 'node:os';
import pg from 'pg';
import { WalpurgeConfig } from '@walpurge/config';
import { createLogger, createMetricsRegistry } from '@walpurge/core';
import { createKafkaSink, createListener, type ListenerSink } from '@walpurge/listener';
import type { ChangeEvent } from '@walpurge/protocol';
import {
  KAFKA_VERSION,
  createIsolatedDatabase,
  startTestEnvironment,
  uniqueName,
  waitFor,
} from '@walpurge/testing';

const CHANGES = Number(process.env['BENCH_CHANGES'] ?? 200_000);
const TX_ROWS = Number(process.env['BENCH_TX_ROWS'] ?? 500);
const RATE = Number(process.env['BENCH_RATE'] ?? 5000);
const RATE_SECONDS = Number(process.env['BENCH_RATE_SECONDS'] ?? 20);
const RATE_TX_ROWS = Number(process.env['BENCH_RATE_TX_ROWS'] ?? 10);
const PARTITIONS = Number(process.env['BENCH_PARTITIONS'] ?? 6);

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

async function main(): Promise<void> {
  const env = await startTestEnvironment({ redis: false, log: () => {} });
  const { databaseUrl, kafkaBrokers } = env.urls as { databaseUrl: string; kafkaBrokers: string[] };
  const db = await createIsolatedDatabase(databaseUrl, 'bench');
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  await client.query('CREATE TABLE bench (id bigint PRIMARY KEY, v int NOT NULL, payload text NOT NULL)');
  const serverVersion = (await client.query<{ v: string }>('SHOW server_version')).rows[0]?.v;

  const logger = createLogger({ level: process.env['LOG_LEVEL'] ?? 'warn', pretty: false });
  const registry = createMetricsRegistry({ defaultMetrics: false });
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
    kafka: { brokers: kafkaBrokers, topic: slot, partitions: PARTITIONS },
  });

  // Wraps the Kafka sink to time each transaction from its commit to Kafka's acknowledgement.
  const kafka = createKafkaSink({ config: config.kafka!, logger, registry });
  let acked = 0;
  let recordLatency: ((ms: number) => void) | undefined;
  const sink: ListenerSink = {
    preservesCallOrder: true,
    connect: () => kafka.connect(),
    close: () => kafka.close(),
    async publish(events: readonly ChangeEvent[], signal?: AbortSignal) {
      await kafka.publish(events, signal);
      acked += events.length;
      const last = events.at(-1);
      if (last && recordLatency) recordLatency(Date.now() - Date.parse(last.source.commitTs));
    },
  };
  const listener = createListener({
    config,
    logger,
    registry,
    sink,
    onFatal: (error) => {
      throw error;
    },
  });
  await listener.start(new AbortController().signal);
  await waitFor('listener streaming', async () => listener.isReady(), { timeoutMs: 60_000 });

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

  // Phase 2: latency at a fixed rate.
  const latencies: number[] = [];
  recordLatency = (ms) => latencies.push(ms);
  const target = acked + RATE * RATE_SECONDS;
  const intervalMs = (1000 * RATE_TX_ROWS) / RATE;
  const rateStart = performance.now();
  for (let tick = 0; tick < (RATE * RATE_SECONDS) / RATE_TX_ROWS; tick += 1) {
    const due = rateStart + tick * intervalMs;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    await insertTx(RATE_TX_ROWS);
  }
  const rateSeconds = (performance.now() - rateStart) / 1000;
  await waitFor('rate phase acknowledged', async () => acked >= target, {
    timeoutMs: 120_000,
    intervalMs: 20,
  });
  recordLatency = undefined;
  latencies.sort((a, b) => a - b);

  const cpu = os.cpus();
  const lines = [
    'walpurge listener benchmark — PostgreSQL → listener → Kafka (acks=all, idempotent producer)',
    `machine: ${cpu[0]?.model ?? 'unknown cpu'} × ${cpu.length} cores, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, ${os.platform()} ${os.release()}, node ${process.version}`,
    `services: PostgreSQL ${serverVersion}, Kafka ${KAFKA_VERSION} (${env.providers['kafka']}), all on this machine; load avg ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
    `parameters: ${CHANGES} inserts in transactions of ${TX_ROWS} rows, ${PARTITIONS} partitions; then ${RATE} changes/s for ${RATE_SECONDS} s in transactions of ${RATE_TX_ROWS} rows`,
    `throughput: ${Math.round(CHANGES / throughputSeconds)} changes/s sustained (${CHANGES} changes acknowledged by Kafka ${throughputSeconds.toFixed(2)} s after the first commit; writer alone took ${writeSeconds.toFixed(2)} s)`,
    `latency at ${Math.round((RATE * RATE_SECONDS) / rateSeconds)} changes/s (commit → Kafka ack, ${latencies.length} transactions): p50 ${percentile(latencies, 50)} ms, p99 ${percentile(latencies, 99)} ms, max ${latencies.at(-1)} ms`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);

  await listener.stop();
  await client.end();
  await db.drop();
  await env.stop();
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
