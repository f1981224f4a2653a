/**
 * CDN lane benchmark (not part of the test suite): does a throttled CDN slow the Redis purges down?
 * PostgreSQL → listener → (inline, or Kafka with BENCH_TRANSPORT=kafka) → invalidator → Redis UNLINK,
 * with a CDN (a local HTTP server) that takes every purge, then the same again while the CDN answers
 * 429 (Retry-After: 1) for the whole phase.
 *
 *   npm run bench:cdn-lane        (BENCH_RATE changes/s, BENCH_SECONDS per phase, default 200 and 60)
 *
 * Each change is an INSERT whose rule purges `bench:{id}:{t}` in Redis and `https://cdn.bench/{id}`
 * on the CDN; commit → Redis purge per change = Redis acknowledging the UNLINK − t, where t is
 * PostgreSQL's clock_timestamp() (µs) at the insert (one machine, one clock). The figures of both
 * phases are printed with the machine and its load; after the throttled phase the CDN queue is
 * drained and its size reported.
 */
import pg from 'pg';
import { WalpurgeConfig, connectRedis } from '@walpurge/config';
import { createLogger, createMetricsRegistry, type Service } from '@walpurge/core';
import { HttpPurger, RedisPurger, createInvalidator, type Purger } from '@walpurge/invalidator';
import { createListener } from '@walpurge/listener';
import type { ChangeEvent } from '@walpurge/protocol';
import { createIsolatedDatabase, startTestEnvironment, uniqueName, waitFor } from '@walpurge/testing';
import { RecordingServer } from '../../services/invalidator/test/recording-server.js';
import {
  deleteTopics,
  describeDistribution,
  distribution,
  envNumber,
  loadLine,
  machineLine,
  paced,
  rate,
} from './support/report.js';

const TRANSPORT = process.env['BENCH_TRANSPORT'] === 'kafka' ? 'kafka' : 'inline';
const RATE = envNumber('BENCH_RATE', 200);
const SECONDS = envNumber('BENCH_SECONDS', 60);
const TX_ROWS = envNumber('BENCH_TX_ROWS', 10);

async function main(): Promise<void> {
  const loadBefore = loadLine('before');
  const env = await startTestEnvironment({ kafka: TRANSPORT === 'kafka', log: () => {} });
  const {
    databaseUrl,
    redisUrl,
    kafkaBrokers = [],
  } = env.urls as { databaseUrl: string; redisUrl: string; kafkaBrokers?: string[] };
  const db = await createIsolatedDatabase(databaseUrl, 'bench_cdn_lane');
  const sql = new pg.Client({ connectionString: db.url });
  await sql.connect();
  await sql.query('CREATE TABLE bench (id int PRIMARY KEY, t bigint NOT NULL)');
  const cdn = new RecordingServer();
  cdn.defaultReply = () => ({ status: 200, body: '' });
  const endpoint = await cdn.start();

  const name = uniqueName('bench_cdn');
  const config = WalpurgeConfig.parse({
    transport: TRANSPORT,
    database: { url: db.url, slot: name, publication: name, heartbeatIntervalMs: 0, statusIntervalMs: 1000 },
    ...(TRANSPORT === 'kafka'
      ? {
          kafka: {
            brokers: kafkaBrokers,
            topic: name,
            deadLetterTopic: `${name}_dlq`,
            cdnTopic: `${name}_cdn`,
            consumerGroup: name,
          },
        }
      : {}),
    redis: { url: redisUrl, keyPrefix: `${name}:` },
    cdn: { http: { endpoint, concurrency: 8 } },
    rules: [
      {
        table: 'bench',
        on: ['insert'],
        redis: { keys: ['bench:{id}:{t}'] },
        cdn: { urls: ['https://cdn.bench/{id}'] },
      },
    ],
  });
  const logger = createLogger({ level: process.env['LOG_LEVEL'] ?? 'error', pretty: false });
  const registry = createMetricsRegistry({ defaultMetrics: false });

  const total = 2 * Math.round(RATE * SECONDS) + 1;
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
  const backoff = { initialMs: 200, maxMs: 30_000, multiplier: 2, jitter: 0.5 };
  const httpPurger = new HttpPurger(config.cdn!.http!, { requestTimeoutMs: 10_000, backoff });

  const invalidator = createInvalidator({
    config,
    logger,
    registry,
    consume: TRANSPORT === 'kafka' ? 'kafka' : 'none',
    validateSchema: false,
    purgers: [timedPurger, httpPurger],
  });
  const sink =
    TRANSPORT === 'inline'
      ? {
          publish: (events: readonly ChangeEvent[], signal?: AbortSignal) =>
            invalidator.handle(events, signal),
        }
      : undefined;
  const listener = createListener({
    config,
    logger,
    registry: createMetricsRegistry({ defaultMetrics: false }),
    ...(sink ? { sink } : {}),
    onFatal: (error) => {
      throw error;
    },
  });
  const services: Array<Service & { isReady(): boolean }> = [invalidator, listener];
  for (const service of services) await service.start(new AbortController().signal);
  await waitFor('invalidator and listener ready', async () => services.every((s) => s.isReady()), {
    timeoutMs: 90_000,
  });

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
  const ticks = Math.round((RATE * SECONDS) / TX_ROWS);
  const phase = async (): Promise<{ seconds: number; from: number; to: number }> => {
    const from = nextId + 1;
    const seconds = await paced(ticks, (1000 * TX_ROWS) / RATE, () => insertTx(TX_ROWS));
    await waitFor('the phase purged from Redis', async () => purgedCount >= nextId, {
      timeoutMs: 120_000,
      intervalMs: 10,
    });
    return { seconds, from, to: nextId };
  };
  const latencies = (from: number, to: number) => distribution(Array.from(latencyMs.subarray(from, to + 1)));

  const healthy = await phase();
  const loadAfterHealthy = loadLine('after the healthy-CDN phase');
  const cdnCallsHealthy = cdn.requests.length;
  await waitFor('CDN purges of the healthy phase', async () => cdn.succeeded.length >= 1, {
    timeoutMs: 60_000,
  });

  cdn.throttle(SECONDS * 1000 + 5_000, 1);
  const throttledFrom = cdn.requests.length;
  const throttled = await phase();
  const loadAfterThrottled = loadLine('after the throttled-CDN phase');
  const answered429 = cdn.requests.length - throttledFrom;
  cdn.unthrottle();
  const drainStarted = performance.now();
  const wanted = (): number => new Set(cdn.succeeded.map((request) => request.path)).size;
  await waitFor('every CDN purge after the throttle', async () => wanted() >= nextId, {
    timeoutMs: 300_000,
    intervalMs: 50,
  });
  const drainSeconds = (performance.now() - drainStarted) / 1000;

  const lines = [
    `walpurge CDN lane benchmark — commit → Redis purge with a healthy CDN vs a CDN answering 429 (${TRANSPORT} transport)`,
    machineLine(),
    `services: ${Object.entries(env.providers)
      .map(([service, provider]) => `${service}=${provider}`)
      .join(', ')}, all on this machine; one Node process runs listener and invalidator`,
    loadBefore,
    loadAfterHealthy,
    loadAfterThrottled,
    `parameters: ${RATE} changes/s for ${SECONDS} s per phase, transactions of ${TX_ROWS}; cdn.coalesceWindowMs ${config.cdn!.coalesceWindowMs}`,
    `healthy CDN (${rate(healthy.to - healthy.from + 1, healthy.seconds)} changes/s, ${cdnCallsHealthy} CDN requests): commit → Redis purge ${describeDistribution(latencies(healthy.from, healthy.to))}`,
    `CDN answering 429 (${answered429} requests refused): commit → Redis purge ${describeDistribution(latencies(throttled.from, throttled.to))}`,
    `after the throttle: ${nextId} distinct URLs purged, the queue drained in ${drainSeconds.toFixed(2)} s`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);

  for (const service of [...services].reverse()) await service.stop();
  await cdn.stop();
  await sql.end();
  await db.drop();
  if (TRANSPORT === 'kafka') await deleteTopics(kafkaBrokers, [name, `${name}_dlq`, `${name}_cdn`]);
  await env.stop();
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
