/**
 * Child process for the cross-process stampede test (stampede.int.test.ts), run with `npx tsx`.
 * Connects, prints "ready", waits for "go" on stdin, then fires CALLS concurrent get()s of one key
 * whose loader counts its runs in Redis (INCR) and is slow. Prints one JSON line with what it got.
 */
import { createInterface } from 'node:readline';
import { Redis } from 'ioredis';
import { createCacheClient } from '../cache-client.js';

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

const redis = new Redis(env('STAMPEDE_REDIS_URL'));
await redis.ping();
const prefix = env('STAMPEDE_PREFIX');
const key = env('STAMPEDE_KEY');
const calls = Number(env('STAMPEDE_CALLS'));
const loaderMs = Number(env('STAMPEDE_LOADER_MS'));
// A generous Redis budget: this run is about leases; a round trip slowed past the default 250 ms by a
// loaded machine would fail open to the loader (fail-open.int.test.ts covers that) and count as a run.
const client = createCacheClient({
  redis,
  keyPrefix: prefix,
  coalesce: false,
  leases: { ttlMs: 30_000 },
  redisTimeoutMs: 10_000,
});

process.stdout.write('ready\n');
const lines = createInterface({ input: process.stdin });
for await (const line of lines) if (line.trim() === 'go') break;

const results = await Promise.allSettled(
  Array.from({ length: calls }, () =>
    client.get(
      key,
      async () => {
        const run = await redis.incr(`${prefix}loader-runs`);
        await new Promise((resolve) => setTimeout(resolve, loaderMs));
        return { run, pid: process.pid };
      },
      { ttl: 60 },
    ),
  ),
);
const values = results.flatMap((r) => (r.status === 'fulfilled' ? [JSON.stringify(r.value)] : []));
const errors = results.flatMap((r) => (r.status === 'rejected' ? [String(r.reason)] : []));
const leaseWaits = (await client.metrics.leaseWaits.get()).values[0]?.value ?? 0;
const failOpens = (await client.metrics.failOpen.get()).values.reduce((sum, v) => sum + v.value, 0);
process.stdout.write(
  `${JSON.stringify({ values: [...new Set(values)], count: values.length, errors, leaseWaits, failOpens })}\n`,
);
await client.close();
redis.disconnect();
lines.close();
