/**
 * Huge-transaction benchmark (not part of the test suite): one transaction of HUGE_ROWS inserts
 * (default 1,000,000) through the listener into Kafka, proving that the listener's memory stays
 * bounded: reading the replication stream pauses while the sink lags (backpressure), so pending
 * events never exceed `maxPendingEvents` plus one socket read, whatever the transaction size.
 *
 *   NODE_OPTIONS=--max-old-space-size=256 \
 *     node --conditions=@walpurge/source --import tsx services/listener/test/huge-transaction.bench.ts
 *
 * HUGE_ROWS=n rows; HUGE_SINK=kafka (default) or discard (acknowledges after HUGE_DISCARD_DELAY_MS,
 * default 2 ms per call, no Kafka needed). Uses WALPURGE_TEST_* services when set, else starts local
 * ones. Prints rows/s, peak RSS and heap, peak pending events and backpressure pauses. The topic is
 * deleted afterwards.
 */
import os from 'node:os';
import kafkajs from 'kafkajs';
import pg from 'pg';
import { WalpurgeConfig } from '@walpurge/config';
import { createLogger, createMetricsRegistry } from '@walpurge/core';
import type { ChangeEvent } from '@walpurge/protocol';
import { createIsolatedDatabase, startTestEnvironment, uniqueName, waitFor } from '@walpurge/testing';
import { createKafkaSink } from '../src/kafka/kafka-sink.js';
import { createListener, defaultListenerTuning, type ListenerSink } from '../src/listener.js';
import { confirmedFlush, metricValue } from '../src/test-support/harness.js';

const ROWS = Number(process.env['HUGE_ROWS'] ?? 1_000_000);
const SINK = process.env['HUGE_SINK'] ?? 'kafka';
const DISCARD_DELAY_MS = Number(process.env['HUGE_DISCARD_DELAY_MS'] ?? 2);
const MiB = 1024 * 1024;

async function main(): Promise<void> {
  const env = await startTestEnvironment({ redis: false, kafka: SINK === 'kafka', log: () => {} });
  const { databaseUrl, kafkaBrokers } = env.urls as { databaseUrl: string; kafkaBrokers?: string[] };
  const db = await createIsolatedDatabase(databaseUrl, 'huge');
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  await client.query('CREATE TABLE huge (id bigint PRIMARY KEY, v int NOT NULL, payload text NOT NULL)');

  const logger = createLogger({ level: process.env['LOG_LEVEL'] ?? 'warn', pretty: false });
  const registry = createMetricsRegistry({ defaultMetrics: false });
  const slot = uniqueName('huge');
  const config = WalpurgeConfig.parse({
    transport: 'kafka',
    database: { url: db.url, slot, publication: slot, tables: ['huge'], heartbeatIntervalMs: 0 },
    ...(kafkaBrokers ? { kafka: { brokers: kafkaBrokers, topic: slot, partitions: 3 } } : {}),
  });

  let acked = 0;
  const inner: ListenerSink =
    SINK === 'kafka'
      ? createKafkaSink({ config: config.kafka!, logger, registry })
      : { publish: () => new Promise((resolve) => setTimeout(resolve, DISCARD_DELAY_MS)) };
  const sink: ListenerSink = {
    preservesCallOrder: inner.preservesCallOrder,
    ...(inner.maxCallsInFlight === undefined ? {} : { maxCallsInFlight: inner.maxCallsInFlight }),
    ...(inner.eventBytes ? { eventBytes: inner.eventBytes.bind(inner) } : {}),
    connect: () => inner.connect?.() ?? Promise.resolve(),
    close: () => inner.close?.() ?? Promise.resolve(),
    async publish(events: readonly ChangeEvent[], signal?: AbortSignal) {
      await inner.publish(events, signal);
      acked += events.length;
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

  // Sample memory and the pending gauge while the transaction flows.
  const baseline = process.memoryUsage();
  let peakRss = baseline.rss;
  let peakHeap = baseline.heapUsed;
  let peakPending = 0;
  const sampler = setInterval(() => {
    const usage = process.memoryUsage();
    peakRss = Math.max(peakRss, usage.rss);
    peakHeap = Math.max(peakHeap, usage.heapUsed);
    void metricValue(registry, 'walpurge_listener_pending_events').then((value) => {
      peakPending = Math.max(peakPending, value ?? 0);
    });
  }, 100);
  // Progress on stderr every 5 s: where the time and the memory go while it runs.
  const progress = setInterval(() => {
    const usage = process.memoryUsage();
    process.stderr.write(
      `acked ${acked}, heap ${Math.round(usage.heapUsed / MiB)} MiB, rss ${Math.round(usage.rss / MiB)} MiB, peak pending ${peakPending}\n`,
    );
  }, 5000);

  const started = performance.now();
  await client.query("INSERT INTO huge SELECT g, 0, 'payload-' || g FROM generate_series(1, $1::bigint) g", [
    ROWS,
  ]);
  const commitLsn = (await client.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0]
    ?.lsn as string;
  const committedSeconds = (performance.now() - started) / 1000;
  await waitFor('every row acknowledged', async () => acked >= ROWS, {
    timeoutMs: 3_600_000,
    intervalMs: 50,
  });
  const seconds = (performance.now() - started) / 1000;
  await waitFor(
    'slot confirmed past the transaction',
    async () => {
      const confirmed = await confirmedFlush(client, slot);
      const { rows } = await client.query<{ ok: boolean }>('SELECT $1::pg_lsn >= $2::pg_lsn AS ok', [
        confirmed,
        commitLsn,
      ]);
      return rows[0]?.ok === true;
    },
    { timeoutMs: 120_000 },
  );
  clearInterval(sampler);
  clearInterval(progress);
  const pauses = await metricValue(registry, 'walpurge_listener_backpressure_pauses_total');

  const cpu = os.cpus();
  const lines = [
    `walpurge listener huge-transaction benchmark — one transaction of ${ROWS} inserts → ${SINK === 'kafka' ? 'Kafka (acks=all, idempotent)' : `discarding sink (${DISCARD_DELAY_MS} ms per call)`}`,
    `machine: ${cpu[0]?.model ?? 'unknown cpu'} × ${cpu.length} cores, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, node ${process.version}, heap limit ${Math.round((await import('node:v8')).getHeapStatistics().heap_size_limit / MiB)} MiB; load avg ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
    `tuning: batchSize ${defaultListenerTuning.batchSize}, maxPendingEvents ${defaultListenerTuning.maxPendingEvents}`,
    `time: commit after ${committedSeconds.toFixed(1)} s, every row acknowledged after ${seconds.toFixed(1)} s (${Math.round(ROWS / seconds)} rows/s end to end)`,
    `memory: RSS ${Math.round(baseline.rss / MiB)} → peak ${Math.round(peakRss / MiB)} MiB, heap used ${Math.round(baseline.heapUsed / MiB)} → peak ${Math.round(peakHeap / MiB)} MiB`,
    `backpressure: peak pending events ${peakPending} (sampled), ${pauses ?? 0} pauses; slot confirmed past the commit`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);

  await listener.stop();
  if (kafkaBrokers) {
    const admin = new kafkajs.Kafka({ brokers: kafkaBrokers, logLevel: kafkajs.logLevel.NOTHING }).admin();
    await admin.connect();
    await admin.deleteTopics({ topics: [slot] }).catch(() => {});
    await admin.disconnect();
  }
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
