/**
 * Pipeline benchmark (not part of the test suite): PostgreSQL → listener → Kafka → invalidator →
 * Redis UNLINK, all on this machine (BENCH_TRANSPORT=inline: no Kafka, the embedded mode).
 *
 *   npm run bench:pipeline        (BENCH_* variables below change the parameters)
 *
 * Services are wired as `walpurge run` wires them (packages/cli/src/run/compose-services.ts), with
 * one difference: the Redis purger is wrapped to note when each row's key was purged.
 * Every change is an INSERT of a new row whose rule purges `bench:{id}:{t}`, so each change is
 * exactly one purge. `t` is PostgreSQL's clock_timestamp() (µs) when the row was inserted, just
 * before its autocommit; commit→purge per change = Redis acknowledging the UNLINK of that key − t
 * (one machine, one clock; the writer's own view of its commit would be skewed by sharing an event
 * loop with the listener).
 *
 * Phase 1 (max): BENCH_CHANGES changes as fast as one writer commits them (transactions of
 * BENCH_TX_ROWS rows); as one writer may be the limit, the same number of changes is then committed
 * while the listener is stopped and the pipeline's catch-up is timed. Phase 2 (fixed rate):
 * BENCH_RATE changes/s for BENCH_RATE_SECONDS in transactions of BENCH_RATE_TX_ROWS rows. The
 * invalidator's BENCH_COALESCE_MS (coalesceWindowMs) and BENCH_CONCURRENT_PARTITIONS
 * (partitionsConsumedConcurrently) default to walpurge's own defaults; BENCH_KAFKA_CLIENT=platformatic
 * sets kafka.producerClient. Uses WALPURGE_TEST_* services when set, else starts
 * local ones (@walpurge/testing).
 */
import os from 'node:os';
import pg from 'pg';
import { WalpurgeConfig, connectRedis } from '@walpurge/config';
import { createLogger, createMetricsRegistry, type Service } from '@walpurge/core';
import { RedisPurger, createInvalidator, type Purger } from '@walpurge/invalidator';
import { createListener } from '@walpurge/listener';
import type { ChangeEvent } from '@walpurge/protocol';
import { createIsolatedDatabase, startTestEnvironment, uniqueName, waitFor } from '@walpurge/testing';
import {
  deleteTopics,
  describeDistribution,
  distribution,
  envNonNegative,
  envNumber,
  kafkaClientFromEnv,
  loadLine,
  machineLine,
  peakRssLine,
  paced,
  rate,
} from './support/report.js';
import { machineBusySeconds } from './support/process-usage.js';

const TRANSPORT = process.env['BENCH_TRANSPORT'] === 'inline' ? 'inline' : 'kafka';
const CHANGES = envNumber('BENCH_CHANGES', 100_000);
const TX_ROWS = envNumber('BENCH_TX_ROWS', 500);
const RATE = envNumber('BENCH_RATE', 5000);
const RATE_SECONDS = envNumber('BENCH_RATE_SECONDS', 20);
const RATE_TX_ROWS = envNumber('BENCH_RATE_TX_ROWS', 10);
const PARTITIONS = envNumber('BENCH_PARTITIONS', 6);
/** Invalidator settings the run overrides (BENCH_COALESCE_MS, BENCH_CONCURRENT_PARTITIONS); else walpurge's defaults. */
const INVALIDATOR = {
  ...(process.env['BENCH_COALESCE_MS'] ? { coalesceWindowMs: envNonNegative('BENCH_COALESCE_MS', 0) } : {}),
  ...(process.env['BENCH_CONCURRENT_PARTITIONS']
    ? { partitionsConsumedConcurrently: envNumber('BENCH_CONCURRENT_PARTITIONS', 1) }
    : {}),
};

async function main(): Promise<void> {
  const loadBefore = loadLine('before');
  const env = await startTestEnvironment({ kafka: TRANSPORT === 'kafka', log: () => {} });
  const {
    databaseUrl,
    redisUrl,
    kafkaBrokers = [],
  } = env.urls as {
    databaseUrl: string;
    redisUrl: string;
    kafkaBrokers?: string[];
  };
  const db = await createIsolatedDatabase(databaseUrl, 'bench_pipeline');
  const sql = new pg.Client({ connectionString: db.url });
  await sql.connect();
  await sql.query('CREATE TABLE bench (id int PRIMARY KEY, t bigint NOT NULL)');

  const name = uniqueName('bench_pipeline');
  const config = WalpurgeConfig.parse({
    transport: TRANSPORT,
    database: { url: db.url, slot: name, publication: name, heartbeatIntervalMs: 0, statusIntervalMs: 1000 },
    ...(TRANSPORT === 'kafka'
      ? {
          kafka: {
            brokers: kafkaBrokers,
            topic: name,
            deadLetterTopic: `${name}_dlq`,
            consumerGroup: name,
            partitions: PARTITIONS,
            producerClient: kafkaClientFromEnv(),
          },
        }
      : {}),
    invalidator: INVALIDATOR,
    redis: { url: redisUrl, keyPrefix: `${name}:` },
    rules: [{ table: 'bench', on: ['insert'], redis: { keys: ['bench:{id}:{t}'] } }],
  });
  const logger = createLogger({ level: process.env['LOG_LEVEL'] ?? 'error', pretty: false });
  const registry = createMetricsRegistry({ defaultMetrics: false });

  const total = 2 * CHANGES + Math.round(RATE * RATE_SECONDS) + 1;
  const latencyMs = new Float64Array(total + 1).fill(NaN);
  let purgedCount = 0;
  const redisPurger = new RedisPurger(connectRedis(config.redis!, logger), {
    keyPrefix: config.redis!.keyPrefix,
    batchSize: config.invalidator.redisBatchSize,
    scanCount: config.invalidator.redisScanCount,
  });
  const timedPurger: Purger = {
    name: redisPurger.name,
    stage: redisPurger.stage,
    count: (targets) => redisPurger.count(targets),
    close: () => redisPurger.close(),
    async purge(targets, context) {
      await redisPurger.purge(targets, context);
      const nowUs = (performance.timeOrigin + performance.now()) * 1000;
      for (const key of targets.redis.keys) {
        const [, id, t] = key.split(':').map(Number) as [number, number, number];
        if (Number.isNaN(latencyMs[id])) {
          latencyMs[id] = Math.max(0, (nowUs - t) / 1000);
          purgedCount += 1;
        }
      }
    },
  };

  // As compose-services.ts does for `--role all`: consumers start before producers.
  const invalidator = createInvalidator({
    config,
    logger,
    registry,
    consume: TRANSPORT === 'kafka' ? 'kafka' : 'none',
    purgers: [timedPurger],
  });
  const sink =
    TRANSPORT === 'inline'
      ? {
          publish: (events: readonly ChangeEvent[], signal?: AbortSignal) =>
            invalidator.handle(events, signal),
        }
      : undefined;
  const newListener = () =>
    createListener({
      config,
      logger,
      // A fresh registry per instance: metrics are registered once per registry.
      registry: createMetricsRegistry({ defaultMetrics: false }),
      ...(sink ? { sink } : {}),
      onFatal: (error) => {
        throw error;
      },
    });
  const services: Array<Service & { isReady(): boolean }> = [invalidator, newListener()];
  const ready = () =>
    waitFor('invalidator and listener ready', async () => services.every((s) => s.isReady()), {
      timeoutMs: 90_000,
    });
  for (const service of services) await service.start(new AbortController().signal);
  await ready();

  let nextId = 0;
  const insertTx = async (rows: number): Promise<void> => {
    const first = nextId + 1;
    nextId += rows;
    await sql.query(
      `INSERT INTO bench
       SELECT g, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint
       FROM generate_series($1::int, $2::int) g`,
      [first, nextId],
    );
  };
  const latencies = (from: number, to: number): number[] => Array.from(latencyMs.subarray(from, to + 1));

  // CPU of this process (listener and invalidator) per change: on a loaded machine a steadier
  // figure than the rate, which depends on how much of the CPU the others leave.
  const cpuMicros = (): number => {
    const { user, system } = process.cpuUsage();
    return user + system;
  };
  // Phase 1: as fast as one writer commits.
  const maxCpuStarted = cpuMicros();
  const started = performance.now();
  for (let written = 0; written < CHANGES; written += TX_ROWS)
    await insertTx(Math.min(TX_ROWS, CHANGES - written));
  const writeSeconds = (performance.now() - started) / 1000;
  await waitFor('every change purged', async () => purgedCount >= CHANGES, {
    timeoutMs: 600_000,
    intervalMs: 10,
  });
  const maxSeconds = (performance.now() - started) / 1000;
  const maxCpuPerChange = (cpuMicros() - maxCpuStarted) / CHANGES;
  const maxLatency = distribution(latencies(1, CHANGES));
  const loadAfterMax = loadLine('after the max phase');

  // Phase 1b: catch-up. With the listener stopped the changes wait in the slot; a new listener then
  // streams them through the pipeline as fast as it goes (the writer is out of the way).
  await services[1]?.stop();
  for (let written = 0; written < CHANGES; written += TX_ROWS)
    await insertTx(Math.min(TX_ROWS, CHANGES - written));
  const catchUpCpuStarted = cpuMicros();
  const catchUpMachineStarted = machineBusySeconds();
  const catchUpStarted = performance.now();
  services[1] = newListener();
  await services[1].start(new AbortController().signal);
  await waitFor('backlog purged', async () => purgedCount >= nextId, { timeoutMs: 600_000, intervalMs: 10 });
  const catchUpSeconds = (performance.now() - catchUpStarted) / 1000;
  const catchUpCpuPerChange = (cpuMicros() - catchUpCpuStarted) / CHANGES;
  const catchUpMachinePerChange = ((machineBusySeconds() - catchUpMachineStarted) * 1e6) / CHANGES;
  const loadAfterCatchUp = loadLine('after the catch-up phase');

  // Phase 2: a fixed rate.
  const firstRateId = nextId + 1;
  const ticks = Math.round((RATE * RATE_SECONDS) / RATE_TX_ROWS);
  const rateSeconds = await paced(ticks, (1000 * RATE_TX_ROWS) / RATE, () => insertTx(RATE_TX_ROWS));
  await waitFor('rate phase purged', async () => purgedCount >= nextId, {
    timeoutMs: 120_000,
    intervalMs: 10,
  });
  const rateLatency = distribution(latencies(firstRateId, nextId));

  const lines = [
    `walpurge pipeline benchmark — PostgreSQL → listener → ${TRANSPORT === 'kafka' ? 'Kafka → ' : '(inline) '}invalidator → Redis UNLINK`,
    machineLine(),
    `services: ${Object.entries(env.providers)
      .map(([service, provider]) => `${service}=${provider}`)
      .join(', ')}, all on this machine; one Node process runs listener and invalidator`,
    loadBefore,
    loadAfterMax,
    loadAfterCatchUp,
    loadLine('at the end'),
    `parameters: transport ${TRANSPORT}${TRANSPORT === 'kafka' ? `, ${PARTITIONS} partitions, ${config.invalidator.partitionsConsumedConcurrently} consumed concurrently, producer client ${config.kafka?.producerClient ?? 'kafkajs'}` : ''}, coalesce window ${config.invalidator.coalesceWindowMs} ms / ${config.invalidator.maxBatchEvents} events; max phase ${CHANGES} inserts in transactions of ${TX_ROWS}; rate phase ${RATE} changes/s for ${RATE_SECONDS} s in transactions of ${RATE_TX_ROWS}`,
    `max: ${rate(CHANGES, maxSeconds)} events/s → purges sustained (${CHANGES} changes committed and purged ${maxSeconds.toFixed(2)} s after the first commit; the writer alone took ${writeSeconds.toFixed(2)} s)`,
    `max: commit → purge per change ${describeDistribution(maxLatency)} (includes queueing behind the backlog)`,
    `max: ${maxCpuPerChange.toFixed(1)} µs of CPU per change in this process (listener and invalidator, user + system; the writer's query building included)`,
    `catch-up: ${rate(CHANGES, catchUpSeconds)} events/s → purges (a backlog of ${CHANGES} changes purged ${catchUpSeconds.toFixed(2)} s after a new listener started, connection and slot setup included)`,
    `catch-up: ${catchUpCpuPerChange.toFixed(1)} µs of CPU per change in this process (listener and invalidator, user + system)`,
    `catch-up: ${catchUpMachinePerChange.toFixed(1)} µs of CPU per change on the whole machine (PostgreSQL, ${TRANSPORT === 'kafka' ? 'Kafka, ' : ''}Redis, walpurge, anything else running): ${os.availableParallelism()} cores at 100% allow at most ${rate(1e6 * os.availableParallelism(), catchUpMachinePerChange)} changes/s at this cost`,
    `fixed rate ${rate(ticks * RATE_TX_ROWS, rateSeconds)} changes/s: commit → purge per change ${describeDistribution(rateLatency)}`,
    peakRssLine(),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);

  for (const service of [...services].reverse()) await service.stop();
  await sql.end();
  await db.drop();
  if (TRANSPORT === 'kafka') await deleteTopics(kafkaBrokers, [name, `${name}_dlq`]);
  await env.stop();
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
