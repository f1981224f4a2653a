/**
 * @walpurge/client read-path benchmark, beside a plain ioredis cache-aside baseline in the same run.
 *
 *   npm run bench:client
 *
 * Uses WALPURGE_TEST_REDIS_URL / WALPURGE_TEST_DATABASE_URL when set, else starts servers
 * (@walpurge/testing).
 * Prints: get() latency and throughput for an L1 hit, a Redis hit and a miss (real Postgres
 * loader), then a mixed concurrent workload with purges and a hot-key stampede, counting database
 * calls for each approach. Figures depend on the machine; compare columns, not runs.
 */
import { Redis } from 'ioredis';
import pg from 'pg';
import { createCacheClient, type CacheClient } from '@walpurge/client';
import {
  createIsolatedDatabase,
  deleteRedisKeys,
  endPool,
  startTestEnvironment,
  uniqueName,
} from '@walpurge/testing';
import { loadLine, machineLine } from './support/report.js';

const ROWS = 1_000;
/** Every key prefix this run used, deleted from Redis at the end. */
const usedPrefixes: string[] = [];
function runPrefix(name: string): string {
  const prefix = uniqueName(name);
  usedPrefixes.push(prefix);
  return prefix;
}
const PAYLOAD = 'x'.repeat(400);

interface Stats {
  ops: number;
  seconds: number;
  p50: number;
  p99: number;
}

async function measure(
  count: number,
  concurrency: number,
  op: (i: number) => Promise<unknown>,
): Promise<Stats> {
  const latencies = new Float64Array(count);
  let next = 0;
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < count; i = next++) {
        const t0 = process.hrtime.bigint();
        await op(i);
        latencies[i] = Number(process.hrtime.bigint() - t0) / 1e6;
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const sorted = [...latencies].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  return { ops: count / seconds, seconds, p50: at(0.5), p99: at(0.99) };
}

function row(label: string, s: Stats, extra = ''): string {
  return `  ${label.padEnd(34)} ${s.ops.toFixed(0).padStart(8)} ops/s   p50 ${s.p50.toFixed(3).padStart(7)} ms   p99 ${s.p99.toFixed(3).padStart(7)} ms ${extra}`;
}

/** Zipf-like key choice (s≈1) over ROWS keys: a few hot rows, a long tail. */
function zipfPicker(): () => number {
  const weights = Array.from({ length: ROWS }, (_, i) => 1 / (i + 1));
  const total = weights.reduce((a, b) => a + b, 0);
  const cumulative: number[] = [];
  let sum = 0;
  for (const w of weights) cumulative.push((sum += w / total));
  return () => {
    const u = Math.random();
    let lo = 0;
    let hi = ROWS - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((cumulative[mid] ?? 1) < u) lo = mid + 1;
      else hi = mid;
    }
    return lo + 1;
  };
}

async function main(): Promise<void> {
  const loadBefore = loadLine('before');
  const env = await startTestEnvironment({ kafka: false, log: () => {} });
  const { databaseUrl: adminUrl, redisUrl } = env.urls as { databaseUrl: string; redisUrl: string };
  const db = await createIsolatedDatabase(adminUrl, 'client_bench');
  const pool = new pg.Pool({ connectionString: db.url, max: 16 });
  await pool.query('CREATE TABLE items (id int PRIMARY KEY, payload text NOT NULL)');
  await pool.query('INSERT INTO items SELECT g, $2 || g FROM generate_series(1, $1) g', [ROWS, PAYLOAD]);

  let dbCalls = 0;
  const loadRow = async (id: number): Promise<{ id: number; payload: string }> => {
    dbCalls += 1;
    const { rows } = await pool.query<{ payload: string }>('SELECT payload FROM items WHERE id = $1', [id]);
    return { id, payload: rows[0]?.payload ?? '' };
  };

  const redis = new Redis(redisUrl);
  const purger = new Redis(redisUrl);
  await Promise.all([redis.ping(), purger.ping()]);

  const baseline = (prefix: string) => async (id: number) => {
    const key = `${prefix}item:${id}`;
    const hit = await redis.get(key);
    if (hit !== null) return JSON.parse(hit) as unknown;
    const value = await loadRow(id);
    await redis.set(key, JSON.stringify(value), 'EX', 300);
    return value;
  };
  const viaClient = (client: CacheClient) => (id: number) =>
    client.get(`item:${id}`, () => loadRow(id), { ttl: 300 });

  console.log(
    `\n@walpurge/client read path vs plain ioredis cache-aside (${ROWS} rows, ~${PAYLOAD.length} B values)`,
  );
  console.log(machineLine());
  console.log(
    `services: ${Object.entries(env.providers)
      .map(([service, provider]) => `${service}=${provider}`)
      .join(', ')}, on this machine`,
  );
  console.log(`${loadBefore}\n`);

  // --- single-request latency, one caller at a time -------------------------------------------
  console.log('Sequential get(), one caller:');
  {
    const prefix = `${runPrefix('bench_seq')}:`;
    const l1Client = createCacheClient({
      redis,
      keyPrefix: prefix,
      l1: { maxStalenessMs: 60_000 },
      earlyRefreshBeta: 0,
    });
    const redisClient = createCacheClient({ redis, keyPrefix: prefix, earlyRefreshBeta: 0 });
    await l1Client.ready();
    const base = baseline(`${prefix}base:`);
    await viaClient(l1Client)(1);
    await base(1);
    await viaClient(l1Client)(1);
    console.log(row('walpurge L1 hit', await measure(50_000, 1, () => viaClient(l1Client)(1))));
    console.log(row('walpurge Redis hit (no L1)', await measure(10_000, 1, () => viaClient(redisClient)(1))));
    console.log(row('baseline Redis hit (GET+JSON.parse)', await measure(10_000, 1, () => base(1))));
    const missPrefix = `${runPrefix('bench_miss')}:`;
    const missClient = createCacheClient({ redis, keyPrefix: missPrefix, earlyRefreshBeta: 0 });
    const baseMiss = baseline(`${missPrefix}base:`);
    console.log(
      row('walpurge miss (lease+PG+CAS fill)', await measure(ROWS, 1, (i) => viaClient(missClient)(i + 1))),
    );
    console.log(row('baseline miss (GET+PG+SET)', await measure(ROWS, 1, (i) => baseMiss(i + 1))));
    await Promise.all([l1Client.close(), redisClient.close(), missClient.close()]);
  }

  // --- mixed concurrent workload with purges --------------------------------------------------
  const REQUESTS = 30_000;
  const CONCURRENCY = 64;
  console.log(
    `\nMixed workload: ${REQUESTS} get()s, zipf keys, concurrency ${CONCURRENCY}, a purge (UNLINK) every 2 ms:`,
  );
  const pick = zipfPicker();
  const keys = Array.from({ length: REQUESTS }, pick);
  const runMixed = async (label: string, prefix: string, get: (id: number) => Promise<unknown>) => {
    dbCalls = 0;
    let purging = true;
    let purges = 0;
    const purgeLoop = (async () => {
      while (purging) {
        await purger.unlink(`${prefix}item:${pick()}`, `${prefix}base:item:${pick()}`);
        purges += 1;
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
    })();
    const stats = await measure(REQUESTS, CONCURRENCY, (i) => get(keys[i] ?? 1));
    purging = false;
    await purgeLoop;
    const saved = (1 - dbCalls / REQUESTS) * 100;
    console.log(
      row(
        label,
        stats,
        `  db calls ${String(dbCalls).padStart(5)} (${saved.toFixed(1)}% saved, ${purges} purges)`,
      ),
    );
  };
  {
    const prefix = `${runPrefix('bench_mix')}:`;
    await runMixed('baseline cache-aside', prefix, baseline(`${prefix}base:`));
    const prefix2 = `${runPrefix('bench_mix')}:`;
    const client = createCacheClient({ redis, keyPrefix: prefix2 });
    await runMixed('walpurge (Redis only)', prefix2, viaClient(client));
    await client.close();
    const prefix3 = `${runPrefix('bench_mix')}:`;
    const l1Client = createCacheClient({ redis, keyPrefix: prefix3, l1: { maxStalenessMs: 5_000 } });
    await l1Client.ready();
    await runMixed('walpurge (L1 + Redis)', prefix3, viaClient(l1Client));
    await l1Client.close();
  }

  // --- hot-key stampede ----------------------------------------------------------------------
  const ROUNDS = 20;
  const CALLERS = 500;
  console.log(`\nHot key purged ${ROUNDS} times, ${CALLERS} concurrent get()s right after each purge:`);
  const stampede = async (label: string, prefix: string, key: string, get: () => Promise<unknown>) => {
    dbCalls = 0;
    const started = process.hrtime.bigint();
    for (let round = 0; round < ROUNDS; round++) {
      await purger.unlink(`${prefix}${key}`);
      await Promise.all(Array.from({ length: CALLERS }, get));
    }
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    console.log(
      `  ${label.padEnd(34)} db calls ${String(dbCalls).padStart(6)} for ${ROUNDS * CALLERS} requests   (${ms.toFixed(0)} ms)`,
    );
  };
  {
    const prefix = `${runPrefix('bench_hot')}:`;
    const base = baseline(prefix);
    await stampede('baseline cache-aside', prefix, 'item:7', () => base(7));
    const client = createCacheClient({ redis, keyPrefix: prefix, coalesce: false });
    await stampede('walpurge leases, no coalescing', prefix, 'item:7', () => viaClient(client)(7));
    await client.close();
    const coalescing = createCacheClient({ redis, keyPrefix: prefix });
    await stampede('walpurge leases + coalescing', prefix, 'item:7', () => viaClient(coalescing)(7));
    await coalescing.close();
  }

  for (const prefix of usedPrefixes) await deleteRedisKeys(purger, `${prefix}:`);
  redis.disconnect();
  purger.disconnect();
  await endPool(pool);
  await db.drop();
  await env.stop();
  console.log(`\n${loadLine('at the end')}`);
}

await main();
