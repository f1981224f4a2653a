/**
 * The consistency observer's own cost (not part of the test suite): checks per second and CPU per
 * check, for the two kinds of check it makes.
 *
 *   npm run bench:inspect        (BENCH_CHANGES, BENCH_ROUNDS change the parameters)
 *
 * Uses WALPURGE_TEST_REDIS_URL / WALPURGE_TEST_DATABASE_URL when set, else starts servers
 * (@walpurge/testing). BENCH_CHANGES sampled changes (sampleRate 1, one key each, one timescale
 * of 1 ms, so every check is due at once) are offered to an Observer, and the time and process CPU
 * until all are checked are measured:
 * - consistent: the keys are absent (the common case after a purge): one Redis read per check,
 *   plus the time-to-consistency poll that finds the key consistent (one more read); the checks
 *   that start late in the burst are counted unverifiable (checked-late) for the same work;
 * - confirmed: every key holds an SDK entry older than its row: a Redis read, the PostgreSQL
 *   re-read of the row and a second Redis read per check (the worst case, every check a candidate).
 * CPU per check is the process's user + system CPU divided by checks: it includes ioredis, pg and
 * the observer (and the polls), which is what an operator pays.
 */
import { Redis } from 'ioredis';
import pg from 'pg';
import { ENTRY_FIELDS } from '@walpurge/client';
import { InspectConfig, WalpurgeConfig } from '@walpurge/config';
import { createLogger, createMetricsRegistry } from '@walpurge/core';
import { Observer, createInspectMetrics, createRowPool } from '@walpurge/inspector';
import { createIsolatedDatabase, startTestEnvironment, uniqueName, waitFor } from '@walpurge/testing';
import { benchUpdate } from './support/change-events.js';
import { envNumber, loadLine, machineLine, rate } from './support/report.js';

const CHANGES = envNumber('BENCH_CHANGES', 10_000);
const ROUNDS = envNumber('BENCH_ROUNDS', 3);
/** Changes offered and not yet checked, at most (see round()). */
const IN_FLIGHT = 2_000;

async function main(): Promise<void> {
  console.log(machineLine());
  console.log(loadLine('before'));
  console.log(`parameters: ${CHANGES} sampled changes per round, ${ROUNDS} rounds, one key per change`);
  const env = await startTestEnvironment({ kafka: false, log: () => {} });
  const { databaseUrl: adminUrl, redisUrl } = env.urls as { databaseUrl: string; redisUrl: string };
  const database = await createIsolatedDatabase(adminUrl, 'inspect_bench');
  const admin = new pg.Pool({ connectionString: database.url, max: 2 });
  await admin.query('CREATE TABLE items (id int PRIMARY KEY, ver bigint NOT NULL)');
  await admin.query('INSERT INTO items SELECT g, 2 FROM generate_series(1, $1) g', [CHANGES]);
  const prefix = `${uniqueName('inspect_bench')}:`;
  const redis = new Redis(redisUrl);
  const config = WalpurgeConfig.parse({
    redis: { url: redisUrl, keyPrefix: prefix },
    rules: [{ name: 'items', table: 'public.items', version: 'ver', redis: { keys: ['item:{id}'] } }],
  });
  const pool = createRowPool({ url: database.url });
  const logger = createLogger({ level: 'silent' });
  const changes = (): ReturnType<typeof benchUpdate>[] =>
    Array.from({ length: CHANGES }, (_, i) => {
      const event = benchUpdate('items', i + 1);
      return { ...event, after: { id: i + 1, ver: '2' } };
    });

  async function round(kind: 'consistent' | 'confirmed'): Promise<{ perSecond: number; cpuUs: number }> {
    if (kind === 'confirmed') {
      for (let i = 1; i <= CHANGES; i += 1000) {
        const pipeline = redis.pipeline();
        for (let id = i; id < Math.min(CHANGES + 1, i + 1000); id++)
          pipeline.hset(`${prefix}item:${id}`, {
            [ENTRY_FIELDS.value]: 'j1',
            [ENTRY_FIELDS.version]: '1',
            [ENTRY_FIELDS.filledAt]: '1',
          });
        await pipeline.exec();
      }
    }
    const observer = new Observer({
      config,
      inspect: InspectConfig.parse({ sampleRate: 1, timescalesMs: [1], maxPendingChecks: 10 * CHANGES }),
      redis,
      pool,
      metrics: createInspectMetrics(createMetricsRegistry({ defaultMetrics: false })),
      logger,
    });
    const events = changes();
    const checked = (): number => observer.report().checks.reduce((sum, row) => sum + row.checked, 0);
    const cpu = process.cpuUsage();
    const started = performance.now();
    // As a source would: batches, each planned before the next, and (like a consumer behind its
    // fetches) at most IN_FLIGHT changes unchecked: 10,000 confirms at once would queue for the
    // pool's 4 connections past their read deadline and end as row-read-failed, not measured.
    for (let i = 0; i < events.length; i += 1000) {
      observer.offer(events.slice(i, i + 1000));
      const offered = Math.min(events.length, i + 1000);
      await waitFor('the checks to keep up', async () => checked() >= offered - IN_FLIGHT, {
        timeoutMs: 60_000,
        // report() is not free: polled rarely, it stays out of the CPU per check.
        intervalMs: 20,
      });
    }
    await waitFor('every check', async () => checked() >= CHANGES, { timeoutMs: 120_000, intervalMs: 5 });
    const seconds = (performance.now() - started) / 1000;
    const used = process.cpuUsage(cpu);
    const report = observer.report();
    await observer.stop();
    const sdk = report.checks.find((row) => row.writer === 'sdk');
    // All checks fall due at once, so the last ones start past their lateness tolerance: a
    // consistent look then counts as unverifiable (checked-late) for the same work, one read.
    const lateChecks = report.unchecked['checked-late'] ?? 0;
    const expected = kind === 'consistent' ? (sdk?.consistent ?? 0) + lateChecks : sdk?.inconsistent;
    if (expected !== CHANGES)
      throw new Error(
        `${kind}: expected ${CHANGES} verdicts, got ${JSON.stringify(sdk)}, not checked ${JSON.stringify(report.unchecked)}`,
      );
    const keys = await redis.keys(`${prefix}*`);
    for (let i = 0; i < keys.length; i += 1000) await redis.unlink(...keys.slice(i, i + 1000));
    return { perSecond: CHANGES / seconds, cpuUs: (used.user + used.system) / CHANGES };
  }

  try {
    for (const kind of ['consistent', 'confirmed'] as const) {
      const results = [];
      for (let r = 0; r < ROUNDS; r++) results.push(await round(kind));
      const best = results.reduce((a, b) => (a.perSecond > b.perSecond ? a : b));
      const cpu = results.map((r) => r.cpuUs).sort((a, b) => a - b)[Math.floor(results.length / 2)] ?? 0;
      console.log(
        `${kind.padEnd(10)}: ${rate(best.perSecond, 1)} checks/s (best of ${ROUNDS}), CPU ${cpu.toFixed(0)} µs per check (median)`,
      );
    }
  } finally {
    console.log(loadLine('after'));
    redis.disconnect();
    await pool.end();
    await admin.end();
    await database.drop();
    await env.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
