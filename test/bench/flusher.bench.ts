/**
 * Write-behind benchmark (not part of the test suite): @walpurge/client writeBehind → BullMQ queue
 * (Redis with AOF) → services/flusher → PostgreSQL, on this machine.
 *
 *   npm run bench:flusher        (BENCH_* variables below change the parameters)
 *
 * Phase 1 (hot keys): BENCH_WRITERS concurrent writers call writeBehind as fast as they can for
 * BENCH_SECONDS, on BENCH_HOT_ROWS rows chosen with a Zipf-like skew (a few rows take most writes).
 * Phase 2 (no coalescing possible): the same writers, every write a new row, for BENCH_SECONDS.
 * Phase 3 (durability): phase 1 again with flusher.acceptDurability mode replica (WAIT for one
 * replica, a local redis-server replicating the queue Redis) and, where the queue Redis has WAITAOF
 * (Redis ≥ 7.2), mode aof: what the stronger guarantee costs beside the default.
 * Printed per phase: writes/s accepted, rows/s flushed, write amplification (rows written to
 * PostgreSQL per accepted write), oldest-pending age sampled every 250 ms under load, writeBehind
 * latency, and the time to drain after the writers stop.
 *
 * PostgreSQL and the cache Redis come from WALPURGE_TEST_* when set (else @walpurge/testing starts
 * them); the queue Redis is always a local redis-server with appendonly + noeviction, because the
 * flusher (rightly) refuses a Redis that may lose its queue.
 */
import { Redis } from 'ioredis';
import pg from 'pg';
import { createWriteClient, type WriteClient } from '@walpurge/client/write';
import { WalpurgeConfig } from '@walpurge/config';
import { createLogger, createMetricsRegistry } from '@walpurge/core';
import { createFlusher } from '@walpurge/flusher';
import {
  createIsolatedDatabase,
  deleteRedisKeys,
  endPool,
  startLocalRedis,
  startTestEnvironment,
  uniqueName,
  waitFor,
} from '@walpurge/testing';
import {
  describeDistribution,
  distribution,
  envNumber,
  loadLine,
  machineLine,
  rate,
  sleep,
} from './support/report.js';

const WRITERS = envNumber('BENCH_WRITERS', 32);
const SECONDS = envNumber('BENCH_SECONDS', 15);
const HOT_ROWS = envNumber('BENCH_HOT_ROWS', 100);

/** Zipf-like (s = 1) row choice: row 1 is written about as often as rows 10-19 together. */
function zipf(rows: number): () => number {
  const cumulative: number[] = [];
  let sum = 0;
  for (let i = 1; i <= rows; i += 1) cumulative.push((sum += 1 / i));
  return () => {
    const u = Math.random() * sum;
    let lo = 0;
    let hi = rows - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((cumulative[mid] ?? sum) < u) lo = mid + 1;
      else hi = mid;
    }
    return lo + 1;
  };
}

interface PhaseResult {
  label: string;
  accepted: number;
  written: number;
  loadSeconds: number;
  drainSeconds: number;
  writtenDuringLoad: number;
  ages: number[];
  writeLatencies: number[];
}

async function main(): Promise<void> {
  const loadBefore = loadLine('before');
  const env = await startTestEnvironment({ kafka: false, log: () => {} });
  const { databaseUrl, redisUrl } = env.urls as { databaseUrl: string; redisUrl: string };
  const queueRedisServer = await startLocalRedis({ persistent: true, log: () => {} });
  const queueReplicaServer = await startLocalRedis({ persistent: true, log: () => {} });
  const queueReplica = new Redis(queueReplicaServer.url);
  await queueReplica.call('REPLICAOF', '127.0.0.1', String(queueRedisServer.port));
  await waitFor(
    'queue Redis replica in sync',
    async () => /master_link_status:up/.test(await queueReplica.info('replication')),
    { timeoutMs: 30_000 },
  );
  const db = await createIsolatedDatabase(databaseUrl, 'bench_flusher');
  const pool = new pg.Pool({ connectionString: db.url, max: 2 });
  await pool.query(`CREATE TABLE items (
    id int PRIMARY KEY, value text NOT NULL, n int NOT NULL, _walpurge_version bigint NOT NULL DEFAULT 0)`);

  const prefix = uniqueName('bench_wb');
  const config = WalpurgeConfig.parse({
    database: { url: db.url },
    redis: { url: redisUrl, keyPrefix: `${prefix}:cache:` },
    flusher: {
      queueRedisUrl: queueRedisServer.url,
      keyPrefix: `${prefix}:wb:`,
      tables: ['public.items'],
      // A unique origin: the default one may be held by another flusher on a shared server.
      replicationOrigin: prefix,
    },
  });
  const flusherConfig = config.flusher!;
  const logger = createLogger({ level: process.env['LOG_LEVEL'] ?? 'error', pretty: false });
  const flusher = createFlusher({
    config,
    logger,
    registry: createMetricsRegistry({ defaultMetrics: false }),
  });
  await flusher.start(new AbortController().signal);

  const cacheRedis = new Redis(redisUrl);
  const queueRedis = new Redis(queueRedisServer.url, { maxRetriesPerRequest: null });
  const clientOptions = {
    cacheRedis,
    queueRedis,
    database: pool,
    queuePrefix: flusherConfig.keyPrefix,
    queueName: flusherConfig.queueName,
    cacheKeyPrefix: config.redis!.keyPrefix,
    keys: (_table: string, row: Record<string, unknown>) => [`item:${String(row['id'])}`],
  };
  const client: WriteClient = createWriteClient(clientOptions);
  const stats = async (): Promise<{ accepted: number; written: number }> => {
    const hash = await queueRedis.hgetall(client.layout.stats);
    return { accepted: Number(hash['accepted'] ?? 0), written: Number(hash['written'] ?? 0) };
  };
  const oldestPendingMs = async (): Promise<number> => {
    const [, score] = await queueRedis.zrange(client.layout.index, 0, 0, 'WITHSCORES');
    return score === undefined ? 0 : Math.max(0, Date.now() - Number(score));
  };

  async function phase(label: string, nextRow: () => number, writer = client): Promise<PhaseResult> {
    const before = await stats();
    const ages: number[] = [];
    const writeLatencies: number[] = [];
    let running = true;
    let seq = 0;
    const sampler = (async () => {
      while (running) {
        ages.push(await oldestPendingMs());
        await sleep(250);
      }
    })();
    const started = performance.now();
    const deadline = started + SECONDS * 1000;
    await Promise.all(
      Array.from({ length: WRITERS }, async () => {
        while (performance.now() < deadline) {
          seq += 1;
          const t0 = performance.now();
          await writer.writeBehind('items', { id: nextRow(), value: `v${seq}`, n: seq });
          writeLatencies.push(performance.now() - t0);
        }
      }),
    );
    const loadSeconds = (performance.now() - started) / 1000;
    running = false;
    await sampler;
    const atStop = await stats();
    const drainStarted = performance.now();
    await waitFor(
      'write-behind queue drained',
      async () => (await queueRedis.zcard(client.layout.index)) === 0,
      {
        timeoutMs: 300_000,
        intervalMs: 20,
      },
    );
    const drainSeconds = (performance.now() - drainStarted) / 1000;
    await sleep(100); // the flusher bumps the `written` counter just after settling
    const after = await stats();
    return {
      label,
      accepted: after.accepted - before.accepted,
      written: after.written - before.written,
      writtenDuringLoad: atStop.written - before.written,
      loadSeconds,
      drainSeconds,
      ages,
      writeLatencies,
    };
  }

  const hot = await phase(`hot keys: ${HOT_ROWS} rows, Zipf-skewed`, zipf(HOT_ROWS));
  const loadAfterHot = loadLine('after the hot-key phase');
  let fresh = 1_000_000;
  const wide = await phase('every write a new row (no coalescing possible)', () => (fresh += 1));

  // The stronger durability options, on the same hot-key load. WAIT/WAITAOF are per connection, so
  // each option gets its own queue connection (as separate application processes would).
  const durable: PhaseResult[] = [];
  const notes: string[] = [];
  for (const durability of [
    { mode: 'replica', replicas: 1, timeoutMs: 5_000 },
    { mode: 'aof', replicas: 0, timeoutMs: 5_000 },
  ] as const) {
    const connection = new Redis(queueRedisServer.url, { maxRetriesPerRequest: null });
    const writer = createWriteClient({ ...clientOptions, queueRedis: connection, durability });
    try {
      await writer.writeBehind('items', { id: 1, value: 'probe', n: 0 });
      durable.push(
        await phase(
          `hot keys, acceptDurability ${durability.mode} (replicas ${durability.replicas})`,
          zipf(HOT_ROWS),
          writer,
        ),
      );
    } catch (error) {
      notes.push(
        `acceptDurability ${durability.mode}: not measured: ${error instanceof Error ? error.message : String(error)}`,
      );
    } finally {
      await writer.close();
      connection.disconnect();
    }
  }

  // Sanity check that real rows were written: HOT_ROWS + one per write of phase 2.
  const { rows } = await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM items');

  const lines = [
    'walpurge write-behind benchmark — writeBehind → BullMQ (Redis, AOF) → flusher → PostgreSQL',
    machineLine(),
    `services: ${Object.entries(env.providers)
      .map(([service, provider]) => `${service}=${provider}`)
      .join(
        ', ',
      )}, queue Redis = local redis-server (appendonly, noeviction); all on this machine, one Node process runs writers and flusher`,
    loadBefore,
    loadAfterHot,
    loadLine('at the end'),
    `parameters: ${WRITERS} concurrent writers, ${SECONDS} s per phase; flusher batchSize ${flusherConfig.batchSize}, batchDelayMs ${flusherConfig.batchDelayMs}, concurrency ${flusherConfig.concurrency ?? flusherConfig.batchSize * 2}`,
  ];
  for (const result of [hot, wide, ...durable]) {
    lines.push(
      `${result.label}:`,
      `  accepted ${rate(result.accepted, result.loadSeconds)} writes/s (${result.accepted} writes in ${result.loadSeconds.toFixed(1)} s); writeBehind latency ${describeDistribution(distribution(result.writeLatencies))}`,
      `  flushed ${rate(result.writtenDuringLoad, result.loadSeconds)} rows/s under load; drained the rest (${result.written - result.writtenDuringLoad} rows) in ${result.drainSeconds.toFixed(2)} s`,
      `  write amplification ${(result.written / result.accepted).toFixed(3)} database row writes per accepted write (${result.written} row writes for ${result.accepted} writes)`,
      `  oldest pending write age under load: ${describeDistribution(distribution(result.ages))}`,
    );
  }
  lines.push(...notes, `rows in PostgreSQL at the end: ${rows[0]?.n}`);
  process.stdout.write(`${lines.join('\n')}\n`);

  await flusher.stop();
  await client.close();
  await deleteRedisKeys(cacheRedis, `${prefix}:`);
  cacheRedis.disconnect();
  queueRedis.disconnect();
  await endPool(pool);
  const admin = new pg.Client({ connectionString: databaseUrl });
  await admin.connect();
  await admin.query('SELECT pg_replication_origin_drop($1)', [prefix]).catch(() => undefined);
  await admin.end();
  await db.drop();
  queueReplica.disconnect();
  await queueReplicaServer.stop();
  await queueRedisServer.stop();
  await env.stop();
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
