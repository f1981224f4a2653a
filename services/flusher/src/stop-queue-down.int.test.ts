import pg from 'pg';
import { describe, expect, inject, it } from 'vitest';
import { createMetricsRegistry, settlesWithin, type Service } from '@walpurge/core';
import { startLocalRedis, waitFor, type LocalRedis } from '@walpurge/testing';
import { createFlusher } from './flusher.js';
import { capturingLogger, type LogLine } from './test-support/log-lines.js';
import { ITEMS_DDL, createFixture, flusherConfig, type Fixture } from './test-support/fixture.js';
import { LatestWrites, checkFinal } from './test-support/invariants.js';
import { pauseRedis, restartRedis, shutdownRedis, type RestartedRedis } from './test-support/redis-outage.js';

const services = inject('services');
const DRAIN_TIMEOUT_MS = 3_000;
const ROWS = 60;

interface OutageContext {
  f: Fixture;
  flusher: { service: Service; lines: LogLine[] };
  lock: pg.Client;
}

/** A flusher whose log lines are kept (pino writes one JSON object per line). */
function loggedFlusher(
  f: Fixture,
  queueRedisUrl: string,
  drainTimeoutMs = DRAIN_TIMEOUT_MS,
): { service: Service; lines: LogLine[] } {
  const { logger, lines } = capturingLogger('warn');
  const config = flusherConfig(
    { databaseAdminUrl: services.databaseUrl, cacheRedisUrl: services.redisUrl, queueRedisUrl },
    f.databaseUrl,
    f.prefix,
    { batchSize: 10, batchDelayMs: 5, drainTimeoutMs, lockDurationMs: 2_000 },
  );
  const service = createFlusher({
    config,
    logger,
    registry: createMetricsRegistry({ defaultMetrics: false }),
  });
  return { service, lines };
}

async function flusherSessions(f: Fixture, where = 'true'): Promise<number> {
  const { rows } = await f.pool.query(
    `SELECT 1 FROM pg_stat_activity WHERE application_name = 'walpurge-flusher' AND datname = current_database() AND ${where}`,
  );
  return rows.length;
}

async function timedStop(service: Service, drainTimeoutMs = DRAIN_TIMEOUT_MS): Promise<number | undefined> {
  const began = Date.now();
  // Generous: the old stop() never resolved at all; the point is that this one does.
  const resolved = await settlesWithin(service.stop(), drainTimeoutMs + 30_000);
  return resolved ? Date.now() - began : undefined;
}

/** How the queue Redis goes away, and how it comes back. */
interface Outage {
  recover(): Promise<void>;
  /** After the test: stops what recover() started. */
  release(): Promise<void>;
}

async function takeDown(kind: 'down' | 'frozen', url: string): Promise<Outage> {
  if (kind === 'frozen') {
    const paused = await pauseRedis(url);
    return { recover: async () => paused.resume(), release: async () => paused.resume() };
  }
  const stopped = await shutdownRedis(url);
  let restarted: RestartedRedis | undefined;
  return {
    async recover() {
      restarted ??= await restartRedis(stopped);
    },
    async release() {
      await restarted?.stop();
    },
  };
}

/**
 * The scenario the tests share: writes are accepted (durable in the queue Redis) while a lock on
 * the table holds the flusher's first batch inside its transaction; then the queue Redis goes away
 * (`down`: SHUTDOWN, data kept, connections refused; `frozen`: SIGSTOP, connections hang) and
 * `during` runs. Afterwards the same Redis comes back with its data and a new flusher must take
 * over the abandoned jobs (after lockDurationMs) and lose nothing.
 */
async function queueOutage(
  kind: 'down' | 'frozen',
  during: (ctx: OutageContext) => Promise<void>,
): Promise<void> {
  const queueRedis: LocalRedis = await startLocalRedis({ persistent: true });
  const f = await createFixture({
    databaseAdminUrl: services.databaseUrl,
    cacheRedisUrl: services.redisUrl,
    queueRedisUrl: queueRedis.url,
  });
  const lock = new pg.Client({ connectionString: f.databaseUrl });
  let outage: Outage | undefined;
  const flusher = loggedFlusher(f, queueRedis.url);
  try {
    await f.pool.query(ITEMS_DDL);
    await lock.connect();
    await lock.query('BEGIN');
    await lock.query('LOCK TABLE items IN EXCLUSIVE MODE'); // readers fine, the flusher's writes wait
    await flusher.service.start(new AbortController().signal);

    const latest = new LatestWrites();
    for (let round = 0; round < 3; round += 1) {
      await Promise.all(
        Array.from({ length: ROWS }, async (_, id) => {
          const value = `r${round}-${id}`;
          const { version } = await f.client.writeBehind('items', { id, value, n: round });
          latest.record(id, version, value);
        }),
      );
    }
    await waitFor(
      'the flusher batch waiting for the table lock',
      async () => (await flusherSessions(f, "wait_event_type = 'Lock'")) > 0,
      { timeoutMs: 30_000, intervalMs: 20 },
    );
    outage = await takeDown(kind, queueRedis.url);

    await during({ f, flusher, lock });
    // Its session is gone, no transaction left open (a backend waiting for a lock notices within
    // client_connection_check_interval).
    await waitFor('the flusher session to end', async () => (await flusherSessions(f)) === 0, {
      timeoutMs: 15_000,
      intervalMs: 50,
    });

    await outage.recover();
    await lock.query('ROLLBACK').catch(() => undefined);
    await f.startFlusher({ lockDurationMs: 2_000 });
    await f.drained(60_000);
    expect(await checkFinal(f, latest)).toEqual([]);
    expect(latest.rows.size).toBe(ROWS);
  } finally {
    await lock.end().catch(() => undefined);
    // Bring Redis back before cleaning up, so that even a stop() that hung above can finish.
    await outage?.recover().catch(() => undefined);
    await settlesWithin(flusher.service.stop(), 10_000);
    await f.close();
    await outage?.release();
    await queueRedis.stop();
  }
}

/** Releases the table lock so the batch in flight commits, then stops (queue Redis unreachable). */
async function batchCommitsDuringDrain({ f, flusher, lock }: OutageContext): Promise<void> {
  await lock.query('COMMIT'); // the batch in flight commits, but cannot be settled in Redis
  await waitFor(
    'the batch in flight in PostgreSQL',
    async () => (await f.pool.query('SELECT 1 FROM items')).rows.length > 0,
    { timeoutMs: 30_000, intervalMs: 20 },
  );

  const tookMs = await timedStop(flusher.service);
  expect(tookMs, 'stop() did not resolve while the queue Redis was unreachable').toBeDefined();
  // It waits out the drain time (Redis may come back), then gives up: order of magnitude only.
  expect(tookMs!).toBeGreaterThanOrEqual(DRAIN_TIMEOUT_MS * 0.9);
  expect(tookMs!).toBeLessThan(DRAIN_TIMEOUT_MS * 5);
  const unsettled = unsettledJobs(flusher.lines);
  // Written to PostgreSQL, pending entry still there: the next flusher rewrites it as a no-op.
  expect(unsettled.some((job) => job.stage === 'settling')).toBe(true);
}

function unsettledJobs(lines: LogLine[]): Array<{ stage: string }> {
  const line = lines.find((l) => Array.isArray(l['unsettled']));
  expect(line, `no line naming unsettled jobs in ${JSON.stringify(lines)}`).toBeDefined();
  expect(line!['unsettledCount']).toBe((line!['unsettled'] as unknown[]).length);
  return line!['unsettled'] as Array<{ stage: string }>;
}

/** The (message, error) pairs of the log lines at `level` or above that say `message`, with their count. */
function repeatsOf(lines: LogLine[], level: number, messages: string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const line of lines) {
    if ((line['level'] as number) < level || !messages.includes(line['msg'] as string)) continue;
    const err = line['err'] as { message?: string } | undefined;
    const kind = `${String(line['msg'])} / ${err?.message ?? ''}`;
    counts.set(kind, (counts.get(kind) ?? 0) + 1);
  }
  return counts;
}

describe('flusher stop() while the queue Redis is down', () => {
  it('idle: logs each kind of reconnect error once instead of every attempt, and stops without waiting out drainTimeoutMs', async () => {
    const drainTimeoutMs = 60_000;
    const queueRedis = await startLocalRedis({ persistent: true });
    const f = await createFixture({
      databaseAdminUrl: services.databaseUrl,
      cacheRedisUrl: services.redisUrl,
      queueRedisUrl: queueRedis.url,
    });
    const flusher = loggedFlusher(f, queueRedis.url, drainTimeoutMs);
    let outage: Outage | undefined;
    try {
      await f.pool.query(ITEMS_DDL);
      await flusher.service.start(new AbortController().signal);
      outage = await takeDown('down', queueRedis.url);
      // ioredis retries every 50 ms growing to 2 s, on each of the worker's connections: dozens of
      // failed attempts in these seconds.
      await new Promise((resolve) => setTimeout(resolve, 5_000));
      const noisy = [
        'flush worker error',
        'queue Redis connection error',
        'queue Redis (worker) connection error',
      ];
      const logged = repeatsOf(flusher.lines, 40, noisy);
      expect([...logged.keys()].some((kind) => kind.startsWith('flush worker error'))).toBe(true);
      for (const [kind, count] of logged) expect(count, kind).toBe(1);

      const tookMs = await timedStop(flusher.service, drainTimeoutMs);
      expect(tookMs, 'stop() did not resolve while the queue Redis was unreachable').toBeDefined();
      // Nothing in flight, so nothing to wait for: order of magnitude only.
      expect(tookMs!).toBeLessThan(drainTimeoutMs / 2);
      expect(flusher.lines.some((line) => String(line['msg']).includes('no flush job in flight'))).toBe(true);
    } finally {
      await outage?.recover().catch(() => undefined);
      await settlesWithin(flusher.service.stop(), 10_000);
      await f.close();
      await outage?.release();
      await queueRedis.stop();
    }
  }, 120_000);

  it('finishes the batch in flight, resolves after about drainTimeoutMs naming the jobs it could not settle, and a later flusher loses nothing', async () => {
    await queueOutage('down', batchCommitsDuringDrain);
  }, 120_000);

  it('same when the queue Redis is frozen (connections open, nothing answers, as in a partition)', async () => {
    await queueOutage('frozen', batchCommitsDuringDrain);
  }, 120_000);

  it('with the database blocked as well: the batch in flight is rolled back at the drain deadline, nothing half-written', async () => {
    await queueOutage('down', async ({ f, flusher }) => {
      const tookMs = await timedStop(flusher.service);
      expect(tookMs, 'stop() did not resolve while the queue Redis was unreachable').toBeDefined();
      expect(tookMs!).toBeGreaterThanOrEqual(DRAIN_TIMEOUT_MS * 0.9);
      expect(tookMs!).toBeLessThan(DRAIN_TIMEOUT_MS * 5);
      expect((await f.pool.query('SELECT 1 FROM items')).rows).toHaveLength(0);
      const unsettled = unsettledJobs(flusher.lines);
      expect(unsettled.length).toBeGreaterThan(0);
      expect(unsettled.every((job) => job.stage !== 'settling')).toBe(true);
    });
  }, 120_000);
});
