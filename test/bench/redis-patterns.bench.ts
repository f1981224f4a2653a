/**
 * Redis pattern purge benchmark (not part of the test suite): pattern purges against a Redis that
 * holds many unrelated keys, beside exact-key purges on the same server.
 *
 *   npm run bench:redis-patterns        (BENCH_* variables below change the parameters)
 *
 * Starts its own redis-server on 127.0.0.1 (@walpurge/testing), fills it with BENCH_KEYSPACES
 * unrelated keys (pipelined MSET), and drives an inline-transport invalidator (its real Redis
 * target, pattern sweeps included) from BENCH_STREAMS concurrent streams, as Kafka partitions
 * consumed concurrently would. Each stream hands over batches of BENCH_BATCH events one after the
 * other for BENCH_SECONDS: first events whose rule purges one exact key, then events whose rule
 * purges the pattern `user:{id}:*`. Before each batch its keys are written, so every purge
 * deletes something; at the end none of them may be left. commit→purge per event = the batch
 * resolving − the event's commitTs (set once its keys are written, as the listener hands it over).
 */
import { Redis } from 'ioredis';
import { WalpurgeConfig } from '@walpurge/config';
import { createLogger, createMetricsRegistry, type Registry } from '@walpurge/core';
import { createInvalidator } from '@walpurge/invalidator';
import type { ChangeEvent } from '@walpurge/protocol';
import { startLocalRedis } from '@walpurge/testing';
import { benchUpdate } from './support/change-events.js';
import { writeKeys } from './support/redis-keys.js';
import {
  describeDistribution,
  distribution,
  envNumber,
  loadLine,
  machineLine,
  rate,
} from './support/report.js';

const KEYSPACES = (process.env['BENCH_KEYSPACES'] ?? '1000000,10000000').split(',').map(Number);
const SECONDS = envNumber('BENCH_SECONDS', 20);
const STREAMS = envNumber('BENCH_STREAMS', 4);
const BATCH = envNumber('BENCH_BATCH', 100);

async function metric(registry: Registry, name: string): Promise<number> {
  const values = (await registry.getSingleMetric(name.replace(/_(sum|count)$/, ''))?.get())?.values ?? [];
  return values
    .filter((v) => ((v as { metricName?: string }).metricName ?? name) === name)
    .reduce((sum, v) => sum + v.value, 0);
}

interface PhaseResult {
  events: number;
  seconds: number;
  latencyMs: number[];
}

/** STREAMS loops, each writing a batch's keys then purging them through `handle`, for SECONDS. */
async function phase(
  redis: Redis,
  handle: (events: readonly ChangeEvent[]) => Promise<void>,
  table: 'items' | 'users',
  keyOf: (id: number) => string,
): Promise<PhaseResult & { left: number }> {
  const latencyMs: number[] = [];
  let nextId = 0;
  let events = 0;
  const written: string[] = [];
  const started = performance.now();
  const deadline = started + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: STREAMS }, async () => {
      while (performance.now() < deadline) {
        const ids = Array.from({ length: BATCH }, () => (nextId += 1));
        const keys = ids.map(keyOf);
        await redis.mset(...keys.flatMap((key) => [key, 'cached']));
        written.push(...keys);
        const batch = ids.map((id) => benchUpdate(table, id));
        await handle(batch);
        const done = Date.now();
        for (const e of batch) latencyMs.push(done - Date.parse(e.source.commitTs));
        events += batch.length;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  let left = 0;
  for (let i = 0; i < written.length; i += 1000) left += await redis.exists(...written.slice(i, i + 1000));
  return { events, seconds, latencyMs, left };
}

async function main(): Promise<void> {
  console.log(machineLine());
  console.log(loadLine('before'));
  console.log(
    `parameters: keyspaces ${KEYSPACES.join(', ')}; ${SECONDS} s per phase; ${STREAMS} streams; ${BATCH} events per batch`,
  );
  const server = await startLocalRedis({ log: () => {} });
  const redis = new Redis(server.url);
  const logger = createLogger({ level: process.env['LOG_LEVEL'] ?? 'error', pretty: false });
  try {
    let filled = 0;
    for (const keyspace of KEYSPACES) {
      const fillStarted = performance.now();
      await writeKeys(redis, filled, keyspace, (k) => `unrelated:${k}`);
      filled = keyspace;
      const dbsize = await redis.dbsize();
      console.log(
        `\n== ${dbsize.toLocaleString('en-US')} keys in Redis (filled in ${((performance.now() - fillStarted) / 1000).toFixed(1)} s; ${loadLine('now')})`,
      );
      const registry = createMetricsRegistry({ defaultMetrics: false });
      const config = WalpurgeConfig.parse({
        redis: { url: server.url, keyPrefix: 'bench:' },
        rules: [
          { table: 'items', on: ['insert', 'update', 'delete'], redis: { keys: ['item:{id}'] } },
          { table: 'users', on: ['insert', 'update', 'delete'], redis: { patterns: ['user:{id}:*'] } },
        ],
      });
      const invalidator = createInvalidator({ config, logger, registry, consume: 'none' });
      await invalidator.start(new AbortController().signal);
      try {
        const exact = await phase(
          redis,
          (events) => invalidator.handle(events),
          'items',
          (id) => `bench:item:${id}`,
        );
        console.log(
          `exact keys: ${rate(exact.events, exact.seconds)} purges/s; commit→purge ${describeDistribution(distribution(exact.latencyMs))}; keys left ${exact.left}`,
        );
        const pattern = await phase(
          redis,
          (events) => invalidator.handle(events),
          'users',
          (id) => `bench:user:${id}:1`,
        );
        const sweeps = await metric(registry, 'walpurge_redis_sweep_duration_seconds_count');
        const sweepSeconds = await metric(registry, 'walpurge_redis_sweep_duration_seconds_sum');
        const patterns = await metric(registry, 'walpurge_redis_sweep_patterns_sum');
        const scanned = await metric(registry, 'walpurge_redis_sweep_keys_scanned_total');
        console.log(
          `patterns:   ${rate(pattern.events, pattern.seconds)} purges/s; commit→purge ${describeDistribution(distribution(pattern.latencyMs))}; keys left ${pattern.left}`,
        );
        console.log(
          `            ${sweeps} sweeps, ${(sweepSeconds / Math.max(1, sweeps)).toFixed(2)} s each on average, ${Math.round(patterns / Math.max(1, sweeps))} patterns per sweep, ${Math.round(scanned / Math.max(1, sweeps))} keys returned by SCAN per sweep`,
        );
        console.log(loadLine('after this keyspace'));
        if (exact.left > 0 || pattern.left > 0) process.exitCode = 1;
      } finally {
        await invalidator.stop();
      }
    }
  } finally {
    redis.disconnect();
    await server.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
