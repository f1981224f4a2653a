/**
 * Refresh-on-invalidate benchmark: one hot key purged again and again while readers hammer it.
 *
 *   npm run bench:refresh
 *
 * Uses WALPURGE_TEST_REDIS_URL when set, else starts Redis (@walpurge/testing). The "database" is a
 * loader that sleeps BENCH_LOADER_MS (default 20) and counts its calls, so the figures are about the
 * cache, not about PostgreSQL. BENCH_READERS concurrent readers (default 500), spread over
 * BENCH_PROCESSES clients with their own connections (default 4, standing in for processes), read
 * the key in a loop while it is purged BENCH_PURGES times (default 100) every BENCH_PURGE_EVERY_MS
 * (default 50) with UNLINK, as the invalidator does. Three ways of reading:
 * - refresh-on-invalidate: get(key, loader, { ttl, refresh: 'on-invalidate' }), L1 on;
 * - plain leases: get(key, loader, { ttl }), L1 on (the same client without refresh);
 * - plain cache-aside: GET, on a miss load and SET, no lease, no coalescing.
 * A second round reads the same way with BENCH_SPARSE_READERS readers (default 5) that pause
 * BENCH_SPARSE_PAUSE_MS (default 100) between reads, and purges every BENCH_SPARSE_PURGE_EVERY_MS
 * (default 250): a popular key rather than a hammered one.
 * Prints database calls, reads, read latency and, for walpurge, the lookups within 1 s after a purge
 * that missed. Figures depend on the machine and its load; compare columns, not runs.
 */
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { createCacheClient, type CacheClient, type GetOptions } from '@walpurge/client';
import { deleteRedisKeys, startTestEnvironment, uniqueName } from '@walpurge/testing';
import { distribution, envNumber, formatMs, loadLine, machineLine } from './support/report.js';

const READERS = envNumber('BENCH_READERS', 500);
const PROCESSES = envNumber('BENCH_PROCESSES', 4);
const PURGES = envNumber('BENCH_PURGES', 100);
const PURGE_EVERY_MS = envNumber('BENCH_PURGE_EVERY_MS', 50);
const LOADER_MS = envNumber('BENCH_LOADER_MS', 20);
const SPARSE_READERS = envNumber('BENCH_SPARSE_READERS', 5);
const SPARSE_PAUSE_MS = envNumber('BENCH_SPARSE_PAUSE_MS', 100);
const SPARSE_PURGE_EVERY_MS = envNumber('BENCH_SPARSE_PURGE_EVERY_MS', 250);
const POST_PURGE_WINDOW_MS = 1_000;
const KEY = 'product:1';
const PAYLOAD = { id: 1, name: 'hot product', description: 'x'.repeat(400) };

interface Result {
  label: string;
  databaseCalls: number;
  reads: number;
  latencies: number[];
  postPurge?: { hits: number; misses: number };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Readers loop on `read` until the purges are done; each read's latency is recorded. */
interface Load {
  readers: number;
  /** Between two reads of one reader, ms; 0: yield to the event loop only. */
  pauseMs: number;
  purgeEveryMs: number;
}

async function hammer(
  label: string,
  load: Load,
  purger: Redis,
  fullKey: string,
  readers: Array<() => Promise<unknown>>,
  calls: () => number,
): Promise<Omit<Result, 'postPurge'>> {
  const latencies: number[] = [];
  let stop = false;
  const loops = readers.map(async (read) => {
    while (!stop) {
      const t0 = process.hrtime.bigint();
      await read();
      latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
      // An L1 hit resolves without I/O: yield, or 500 readers would starve the purges and timers.
      if (load.pauseMs > 0) await sleep(load.pauseMs * (0.5 + Math.random()));
      else await yieldToLoop();
    }
  });
  await sleep(200 + load.pauseMs); // every reader in its loop, the key cached
  const callsBefore = calls();
  latencies.length = 0;
  for (let i = 0; i < PURGES; i++) {
    await purger.unlink(fullKey);
    await sleep(load.purgeEveryMs);
  }
  stop = true;
  await Promise.all(loops);
  return { label, databaseCalls: calls() - callsBefore, reads: latencies.length, latencies };
}

async function postPurgeReads(clients: CacheClient[]): Promise<{ hits: number; misses: number }> {
  let hits = 0;
  let misses = 0;
  for (const client of clients) {
    for (const { labels, value } of (await client.metrics.postPurgeReads.get()).values) {
      if (labels['result'] === 'hit') hits += value;
      else misses += value;
    }
  }
  return { hits, misses };
}

async function viaWalpurge(
  label: string,
  load: Load,
  redisUrl: string,
  purger: Redis,
  prefix: string,
  opts: GetOptions,
): Promise<Result> {
  let calls = 0;
  const loader = async () => {
    calls += 1;
    await sleep(LOADER_MS);
    return PAYLOAD;
  };
  const connections = Array.from({ length: PROCESSES }, () => new Redis(redisUrl));
  const clients = connections.map((redis) =>
    createCacheClient({
      redis,
      keyPrefix: prefix,
      l1: true,
      earlyRefreshBeta: 0,
      refresh: { postPurgeWindowMs: POST_PURGE_WINDOW_MS },
    }),
  );
  await Promise.all(clients.map((client) => client.ready()));
  const readers = Array.from({ length: load.readers }, (_, i) => {
    const client = clients[i % clients.length] as CacheClient;
    return () => client.get(KEY, loader, opts);
  });
  const result = await hammer(label, load, purger, `${prefix}${KEY}`, readers, () => calls);
  const postPurge = await postPurgeReads(clients);
  await Promise.all(clients.map((client) => client.close()));
  for (const redis of connections) redis.disconnect();
  return { ...result, postPurge };
}

async function viaCacheAside(
  label: string,
  load: Load,
  redisUrl: string,
  purger: Redis,
  prefix: string,
): Promise<Result> {
  let calls = 0;
  const connections = Array.from({ length: PROCESSES }, () => new Redis(redisUrl));
  const fullKey = `${prefix}${KEY}`;
  const readers = Array.from({ length: load.readers }, (_, i) => {
    const redis = connections[i % connections.length] as Redis;
    return async () => {
      const hit = await redis.get(fullKey);
      if (hit !== null) return JSON.parse(hit) as unknown;
      calls += 1;
      await sleep(LOADER_MS);
      await redis.set(fullKey, JSON.stringify(PAYLOAD), 'EX', 600);
      return PAYLOAD;
    };
  });
  const result = await hammer(label, load, purger, fullKey, readers, () => calls);
  for (const redis of connections) redis.disconnect();
  return result;
}

function report(result: Result): void {
  const d = distribution(result.latencies);
  const postPurge = result.postPurge
    ? (() => {
        const total = result.postPurge.hits + result.postPurge.misses;
        return `post-purge lookups missed: ${result.postPurge.misses} of ${total}`;
      })()
    : '';
  console.log(
    `  ${result.label.padEnd(24)} ${String(result.databaseCalls).padStart(6)} database calls  ` +
      `${String(result.reads).padStart(8)} reads  p50 ${formatMs(d.p50).padStart(5)} ms  ` +
      `p99 ${formatMs(d.p99).padStart(5)} ms  max ${formatMs(d.max).padStart(5)} ms  ${postPurge}`,
  );
}

async function main(): Promise<void> {
  const loadBefore = loadLine('before');
  const env = await startTestEnvironment({ postgres: false, kafka: false, log: () => {} });
  const { redisUrl } = env.urls as { redisUrl: string };
  const purger = new Redis(redisUrl);
  await purger.ping();
  const run = uniqueName('bench_refresh');

  console.log(`\nrefresh-on-invalidate: one hot key purged ${PURGES} times per round`);
  console.log(
    `readers spread over ${PROCESSES} clients, loader ${LOADER_MS} ms, post-purge window ${POST_PURGE_WINDOW_MS} ms`,
  );
  console.log(machineLine());
  console.log(`services: redis=${env.providers.redis ?? '?'}, on this machine`);
  console.log(`${loadBefore}\n`);

  const rounds: Array<[string, Load]> = [
    [
      `${READERS} readers back to back, a purge every ${PURGE_EVERY_MS} ms:`,
      { readers: READERS, pauseMs: 0, purgeEveryMs: PURGE_EVERY_MS },
    ],
    [
      `${SPARSE_READERS} readers each reading every ~${SPARSE_PAUSE_MS} ms, a purge every ${SPARSE_PURGE_EVERY_MS} ms:`,
      { readers: SPARSE_READERS, pauseMs: SPARSE_PAUSE_MS, purgeEveryMs: SPARSE_PURGE_EVERY_MS },
    ],
  ];
  for (const [title, load] of rounds) {
    console.log(title);
    const hot: GetOptions = { ttl: 600, refresh: 'on-invalidate' };
    report(
      await viaWalpurge('refresh-on-invalidate', load, redisUrl, purger, `${run}:r${load.readers}:`, hot),
    );
    report(
      await viaWalpurge('plain leases', load, redisUrl, purger, `${run}:l${load.readers}:`, { ttl: 600 }),
    );
    report(await viaCacheAside('plain cache-aside', load, redisUrl, purger, `${run}:a${load.readers}:`));
  }

  await deleteRedisKeys(purger, `${run}:`);
  purger.disconnect();
  await env.stop();
  console.log(`\n${loadLine('at the end')}`);
}

await main();
