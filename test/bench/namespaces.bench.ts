/**
 * Versioned namespace benchmark (not part of the test suite): invalidating a group of 10,000 cache
 * entries by bumping their namespace, versus purging the same group by a pattern, while Redis holds
 * many unrelated keys.
 *
 *   npm run bench:namespaces        (BENCH_* variables below change the parameters)
 *
 * Starts its own redis-server on 127.0.0.1 (@walpurge/testing) and fills it with BENCH_KEYSPACES
 * unrelated keys (DEBUG POPULATE where the server allows it, else pipelined MSETs). For each
 * keyspace and each of BENCH_ROUNDS rounds:
 * - namespace: BENCH_ENTRIES entries are cached through @walpurge/client's get(…, { namespaces:
 *   ['catalog'] }), an inline invalidator handles one change whose rule bumps `catalog`, and the
 *   time handle() takes is measured; then every entry is read again and must miss (loader called);
 * - pattern: the same entries are written as plain keys `catalog:<i>`, the invalidator handles one
 *   change whose rule purges `catalog:*` (a SCAN sweep of the keyspace), timed the same way; no key
 *   may be left.
 */
import { Redis } from 'ioredis';
import { createCacheClient } from '@walpurge/client';
import { WalpurgeConfig } from '@walpurge/config';
import { createLogger, createMetricsRegistry } from '@walpurge/core';
import { createInvalidator } from '@walpurge/invalidator';
import { startLocalRedis } from '@walpurge/testing';
import { benchUpdate } from './support/change-events.js';
import { writeKeys } from './support/redis-keys.js';
import { describeDistribution, distribution, envNumber, loadLine, machineLine } from './support/report.js';

const KEYSPACES = (process.env['BENCH_KEYSPACES'] ?? '1000000,10000000').split(',').map(Number);
const ENTRIES = envNumber('BENCH_ENTRIES', 10_000);
const ROUNDS = envNumber('BENCH_ROUNDS', 5);
const CONCURRENCY = envNumber('BENCH_CONCURRENCY', 200);
const PREFIX = 'bench:';

/** Unrelated keys `unrelated:<n>` up to `to`: DEBUG POPULATE if allowed, else 1000 per MSET. */
async function fill(redis: Redis, from: number, to: number): Promise<'DEBUG POPULATE' | 'MSET'> {
  try {
    // POPULATE skips keys that exist, so it only adds the missing ones.
    await redis.call('DEBUG', 'POPULATE', String(to), 'unrelated', '8');
    return 'DEBUG POPULATE';
  } catch {
    await writeKeys(redis, from, to, (k) => `unrelated:${k}`);
    return 'MSET';
  }
}

/** Runs `work(i)` for i in [0, count) with `CONCURRENCY` in flight. */
async function forEach(count: number, work: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < count) await work(next++);
    }),
  );
}

async function main(): Promise<void> {
  console.log(machineLine());
  console.log(loadLine('before'));
  console.log(
    `parameters: keyspaces ${KEYSPACES.join(', ')}; ${ENTRIES} entries per group; ${ROUNDS} rounds; ${CONCURRENCY} concurrent reads`,
  );
  const server = await startLocalRedis({ log: () => {} });
  const redis = new Redis(server.url);
  const logger = createLogger({ level: process.env['LOG_LEVEL'] ?? 'error', pretty: false });
  const config = WalpurgeConfig.parse({
    redis: { url: server.url, keyPrefix: PREFIX },
    rules: [
      { table: 'products', on: ['insert', 'update', 'delete'], redis: { namespaces: ['catalog'] } },
      { table: 'prices', on: ['insert', 'update', 'delete'], redis: { patterns: ['catalog:*'] } },
    ],
  });
  const client = createCacheClient({ redis: server.url, keyPrefix: PREFIX, earlyRefreshBeta: 0 });
  let failed = false;
  try {
    let filled = 0;
    for (const keyspace of KEYSPACES) {
      const fillStarted = performance.now();
      const how = await fill(redis, filled, keyspace);
      filled = keyspace;
      const dbsize = await redis.dbsize();
      console.log(
        `\n== ${dbsize.toLocaleString('en-US')} keys in Redis (${how}, ${((performance.now() - fillStarted) / 1000).toFixed(1)} s; ${loadLine('now')})`,
      );
      const invalidator = createInvalidator({
        config,
        logger,
        registry: createMetricsRegistry({ defaultMetrics: false }),
        consume: 'none',
      });
      await invalidator.start(new AbortController().signal);
      const bumpMs: number[] = [];
      const patternMs: number[] = [];
      let missesAfterBump = 0;
      let leftAfterPattern = 0;
      try {
        for (let round = 0; round < ROUNDS; round++) {
          // Namespace: cache the group through the client, bump, read it all again.
          let loads = 0;
          const loader = async () => ((loads += 1), 'value');
          await forEach(ENTRIES, async (i) => {
            await client.get(`catalog:item:${i}`, loader, { ttl: 600, namespaces: ['catalog'] });
          });
          const cachedLoads = loads;
          const bumpStarted = performance.now();
          await invalidator.handle([benchUpdate('products', 1)]);
          bumpMs.push(performance.now() - bumpStarted);
          await forEach(ENTRIES, async (i) => {
            await client.get(`catalog:item:${i}`, loader, { ttl: 600, namespaces: ['catalog'] });
          });
          missesAfterBump += loads - cachedLoads;

          // Pattern: the same group as plain keys, purged by a sweep of the keyspace.
          for (let i = 0; i < ENTRIES; i += 1000) {
            const args: string[] = [];
            for (let k = i; k < Math.min(ENTRIES, i + 1000); k++) args.push(`${PREFIX}catalog:${k}`, 'v');
            await redis.mset(...args);
          }
          const patternStarted = performance.now();
          await invalidator.handle([benchUpdate('prices', 1)]);
          patternMs.push(performance.now() - patternStarted);
          for (let i = 0; i < ENTRIES; i += 1000) {
            const keys = Array.from(
              { length: Math.min(1000, ENTRIES - i) },
              (_, k) => `${PREFIX}catalog:${i + k}`,
            );
            leftAfterPattern += await redis.exists(...keys);
          }
        }
      } finally {
        await invalidator.stop();
      }
      const bump = distribution(bumpMs);
      const pattern = distribution(patternMs);
      console.log(
        `namespace bump: ${describeDistribution(bump)} per invalidation of ${ENTRIES} entries; ${missesAfterBump}/${ENTRIES * ROUNDS} reads after a bump missed`,
      );
      console.log(
        `pattern purge:  ${describeDistribution(pattern)} per invalidation of ${ENTRIES} entries; ${leftAfterPattern} keys left`,
      );
      console.log(loadLine('after this keyspace'));
      // Old namespaced entries stay until their TTL: drop them so the next keyspace starts clean.
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${PREFIX}catalog:item:*`, 'COUNT', 10_000);
        if (keys.length > 0) await redis.unlink(...keys);
        cursor = next;
      } while (cursor !== '0');
      if (missesAfterBump !== ENTRIES * ROUNDS || leftAfterPattern > 0) failed = true;
    }
  } finally {
    await client.close();
    redis.disconnect();
    await server.stop();
  }
  if (failed) process.exitCode = 1;
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
