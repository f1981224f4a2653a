import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createLogger, createMetricsRegistry } from '@walpurge/core';
import { startLocalRedis, waitFor, type LocalRedis } from '@walpurge/testing';
import { createFlusher } from './flusher.js';
import { ITEMS_DDL, createFixture, flusherConfig } from './test-support/fixture.js';
import { LatestWrites, checkFinal } from './test-support/invariants.js';
import {
  restartRedis,
  shutdownRedis,
  type RestartedRedis,
  type StoppedRedis,
} from './test-support/redis-outage.js';

const services = inject('services');
const DRAIN_TIMEOUT_MS = 3_000;
let queueRedis: LocalRedis;

beforeAll(async () => {
  queueRedis = await startLocalRedis({ persistent: true });
});
afterAll(async () => {
  await queueRedis?.stop();
});

/** Log lines of one flusher, parsed (pino writes one JSON object per line). */
function capturingLogger(): { logger: ReturnType<typeof createLogger>; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n'))
        if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: createLogger({ level: 'warn', destination }), lines };
}

/** Resolves with how long `promise` took, or undefined if it had not settled after `limitMs`. */
async function timed(promise: Promise<unknown>, limitMs: number): Promise<number | undefined> {
  const began = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<undefined>((done) => (timer = setTimeout(() => done(undefined), limitMs)));
  try {
    return await Promise.race([promise.then(() => Date.now() - began), expired]);
  } finally {
    clearTimeout(timer);
  }
}

describe('flusher stop() while the queue Redis is down', () => {
  it('resolves within about drainTimeoutMs, logs what it could not settle, and a later flusher loses nothing', async () => {
    const f = await createFixture({
      databaseAdminUrl: services.databaseUrl,
      cacheRedisUrl: services.redisUrl,
      queueRedisUrl: queueRedis.url,
    });
    let stopped: StoppedRedis | undefined;
    let restarted: RestartedRedis | undefined;
    const flusherA = (() => {
      const { logger, lines } = capturingLogger();
      const config = flusherConfig(
        { databaseAdminUrl: services.databaseUrl, cacheRedisUrl: services.redisUrl, queueRedisUrl: queueRedis.url },
        f.databaseUrl,
        f.prefix,
        { batchSize: 10, batchDelayMs: 5, drainTimeoutMs: DRAIN_TIMEOUT_MS, lockDurationMs: 2_000 },
      );
      const service = createFlusher({ config, logger, registry: createMetricsRegistry({ defaultMetrics: false }) });
      return { service, lines };
    })();
    try {
      await f.pool.query(ITEMS_DDL);
      // Every row takes a while to write, so batches are in flight most of the time.
      await f.pool.query(
        `CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.02); RETURN NEW; END $$`,
      );
      await f.pool.query(
        'CREATE TRIGGER slow BEFORE INSERT OR UPDATE ON items FOR EACH ROW EXECUTE FUNCTION slow()',
      );
      await flusherA.service.start(new AbortController().signal);

      // Accepted writes: every one of these returned, so it is durable in the queue Redis.
      const latest = new LatestWrites();
      for (let round = 0; round < 3; round += 1) {
        await Promise.all(
          Array.from({ length: 60 }, async (_, id) => {
            const value = `r${round}-${id}`;
            const { version } = await f.client.writeBehind('items', { id, value, n: round });
            latest.record(id, version, value);
          }),
        );
      }
      // The queue Redis goes away while a batch is inside its transaction.
      await waitFor(
        'the flusher inside a batch transaction',
        async () => {
          const { rows } = await f.pool.query(
            "SELECT 1 FROM pg_stat_activity WHERE application_name = 'walpurge-flusher' AND datname = current_database() AND xact_start IS NOT NULL AND state <> 'idle'",
          );
          return rows.length > 0;
        },
        { timeoutMs: 30_000, intervalMs: 5 },
      );
      stopped = await shutdownRedis(queueRedis.url);

      const stopping = flusherA.service.stop();
      // Generous: the old stop() never resolved at all; the point is that this one does, on the
      // order of drainTimeoutMs (the exact figure depends on load).
      const tookMs = await timed(stopping, DRAIN_TIMEOUT_MS + 30_000);
      expect(tookMs, 'stop() did not resolve while the queue Redis was down').toBeDefined();
      expect(tookMs!).toBeLessThan(DRAIN_TIMEOUT_MS * 5);
      if (process.env['TMPDBG']) console.log('TMPDBG took', tookMs, JSON.stringify(flusherA.lines, null, 1));
      const { rows: sessions } = await f.pool.query(
        "SELECT 1 FROM pg_stat_activity WHERE application_name = 'walpurge-flusher' AND datname = current_database()",
      );
      expect(sessions).toHaveLength(0); // no transaction left open, nothing half-written
      const unsettled = flusherA.lines.find((line) => Array.isArray(line['unsettled']));
      expect(unsettled, JSON.stringify(flusherA.lines)).toBeDefined();
      expect((unsettled!['unsettled'] as unknown[]).length).toBeGreaterThan(0);

      // The same Redis comes back with its append-only file; a new flusher takes over the
      // abandoned jobs once their locks expire (lockDurationMs) and finishes everything.
      restarted = await restartRedis(stopped);
      await f.startFlusher({ lockDurationMs: 2_000 });
      await f.drained(60_000);
      expect(await checkFinal(f, latest)).toEqual([]);
      expect(latest.rows.size).toBe(60);
    } finally {
      // Bring Redis back before cleaning up, so even a stop() that hung above can finish.
      if (stopped && !restarted) restarted = await restartRedis(stopped).catch(() => undefined);
      await timed(flusherA.service.stop(), 10_000);
      await f.close();
      await restarted?.stop();
    }
  }, 120_000);
});
