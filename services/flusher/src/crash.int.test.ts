import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  killNow,
  spawnServiceMain,
  startLocalPostgres,
  startLocalRedis,
  waitFor,
  type LocalRedis,
  type ServiceProcess,
} from '@walpurge/testing';
import {
  ITEMS_DDL,
  createFixture,
  flusherConfig,
  metricValue,
  type Fixture,
} from './test-support/fixture.js';
import { LatestWrites, checkFinal, checkInvariants } from './test-support/invariants.js';

const services = inject('services');
let queueRedis: LocalRedis;

beforeAll(async () => {
  queueRedis = await startLocalRedis({ persistent: true });
});
afterAll(async () => {
  await queueRedis?.stop();
});

async function writeRounds(
  f: Fixture,
  latest: LatestWrites,
  rounds: number,
  rows: number,
  tag: string,
): Promise<void> {
  for (let round = 0; round < rounds; round += 1) {
    await Promise.all(
      Array.from({ length: rows }, async (_, id) => {
        if (round > 0) await new Promise((done) => setTimeout(done, Math.random() * 5));
        const value = `${tag}-${round}-${id}`;
        const { version } = await f.client.writeBehind('items', { id, value, n: round });
        latest.record(id, version, value);
      }),
    );
  }
}

describe('write-behind flusher under failure', () => {
  it('kill -9 mid-batch and restart: nothing lost, nothing older wins', async () => {
    const f = await createFixture({
      databaseAdminUrl: services.databaseUrl,
      cacheRedisUrl: services.redisUrl,
      queueRedisUrl: queueRedis.url,
    });
    const dir = mkdtempSync(join(tmpdir(), 'wb-crash-'));
    let child: ServiceProcess | undefined;
    try {
      await f.pool.query(ITEMS_DDL);
      // Slow every row down a little so that a batch is in its transaction most of the time.
      await f.pool.query(
        `CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.003); RETURN NEW; END $$`,
      );
      await f.pool.query(
        'CREATE TRIGGER slow BEFORE INSERT OR UPDATE ON items FOR EACH ROW EXECUTE FUNCTION slow()',
      );
      const config = flusherConfig(
        {
          databaseAdminUrl: services.databaseUrl,
          cacheRedisUrl: services.redisUrl,
          queueRedisUrl: queueRedis.url,
        },
        f.databaseUrl,
        f.prefix,
        { batchSize: 40, batchDelayMs: 20, lockDurationMs: 2_000 },
      );
      const configFile = join(dir, 'walpurge.yaml');
      // JSON is YAML: the file is what an operator would write.
      writeFileSync(configFile, JSON.stringify({ ...config, http: { port: 0, host: '127.0.0.1' } }, null, 2));
      const latest = new LatestWrites();

      for (let crash = 0; crash < 2; crash += 1) {
        child = spawnServiceMain('services/flusher/src/main.ts', configFile);
        const writing = writeRounds(f, latest, 15, 150, `c${crash}`);
        // Wait until the flusher is inside a batch transaction, then kill it without warning.
        await waitFor(
          'the flusher inside a transaction',
          async () => {
            const { rows } = await f.pool.query(
              "SELECT 1 FROM pg_stat_activity WHERE application_name = 'walpurge-flusher' AND datname = current_database() AND xact_start IS NOT NULL AND state <> 'idle'",
            );
            return rows.length > 0;
          },
          { timeoutMs: 60_000, intervalMs: 5 },
        ).catch((error: unknown) => {
          throw new Error(`${String(error)}\nflusher output:\n${child?.output.join('')}`);
        });
        await killNow(child);
        await writing;
        expect(await checkInvariants(f, latest)).toEqual([]);
      }

      child = spawnServiceMain('services/flusher/src/main.ts', configFile);
      // Only a third of the rows is written again: the rest must come through from before the crashes.
      await writeRounds(f, latest, 3, 50, 'after');
      await f.drained(90_000);
      expect(await checkFinal(f, latest)).toEqual([]);
      expect(latest.rows.size).toBe(150);
    } finally {
      if (child && child.exitCode === null) await killNow(child);
      await f.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('SIGTERM: the process finishes the batch in flight, exits 0, and leaves nothing half-written', async () => {
    const f = await createFixture({
      databaseAdminUrl: services.databaseUrl,
      cacheRedisUrl: services.redisUrl,
      queueRedisUrl: queueRedis.url,
    });
    const dir = mkdtempSync(join(tmpdir(), 'wb-term-'));
    let child: ServiceProcess | undefined;
    try {
      await f.pool.query(ITEMS_DDL);
      const config = flusherConfig(
        {
          databaseAdminUrl: services.databaseUrl,
          cacheRedisUrl: services.redisUrl,
          queueRedisUrl: queueRedis.url,
        },
        f.databaseUrl,
        f.prefix,
        { batchSize: 40, batchDelayMs: 20 },
      );
      const configFile = join(dir, 'walpurge.yaml');
      writeFileSync(configFile, JSON.stringify({ ...config, http: { port: 0, host: '127.0.0.1' } }, null, 2));
      const latest = new LatestWrites();
      child = spawnServiceMain('services/flusher/src/main.ts', configFile);
      const writing = writeRounds(f, latest, 10, 100, 'term');
      await waitFor(
        'rows reaching PostgreSQL',
        async () => (await f.pool.query('SELECT 1 FROM items LIMIT 1')).rows.length > 0,
        { timeoutMs: 60_000, intervalMs: 20 },
      );
      const exited = new Promise<number | null>((done) => child!.once('exit', (code) => done(code)));
      child.kill('SIGTERM');
      const code = await exited;
      expect(code, child.output.join('')).toBe(0);
      await writing;
      expect(await checkInvariants(f, latest)).toEqual([]);
      const { rows } = await f.pool.query(
        "SELECT 1 FROM pg_stat_activity WHERE application_name = 'walpurge-flusher' AND datname = current_database()",
      );
      expect(rows).toHaveLength(0);

      await f.startFlusher(); // whatever the stopped process left queued is flushed by the next one
      await f.drained();
      expect(await checkFinal(f, latest)).toEqual([]);
    } finally {
      if (child && child.exitCode === null) await killNow(child);
      await f.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('database outage: writes keep being accepted, batches retry with backoff, everything lands after recovery', async () => {
    const base = mkdtempSync(join(tmpdir(), 'wb-outage-'));
    chmodSync(base, 0o755); // the postgres user must reach the data dir inside
    const dataDir = join(base, 'data');
    let pg = await startLocalPostgres({ dataDir });
    const port = pg.port;
    const f = await createFixture({
      databaseAdminUrl: pg.url,
      databaseUrl: pg.url,
      cacheRedisUrl: services.redisUrl,
      queueRedisUrl: queueRedis.url,
    });
    try {
      await f.pool.query(ITEMS_DDL);
      const flusher = await f.startFlusher({ retryInitialMs: 50, retryMaxMs: 400 });
      const latest = new LatestWrites();
      await writeRounds(f, latest, 5, 50, 'before');
      await f.drained();

      await pg.stop();
      await writeRounds(f, latest, 10, 50, 'during'); // accepted while PostgreSQL is down
      await waitFor(
        'transient failures',
        async () =>
          (await metricValue(flusher.registry, 'walpurge_flusher_failures_total', { kind: 'transient' })) >=
          3,
        {
          timeoutMs: 30_000,
        },
      );
      expect(await f.queue.zcard(f.layout.index)).toBe(50);
      expect(flusher.isReady()).toBe(true); // the queue is reachable; writes are accepted
      expect(
        await metricValue(flusher.registry, 'walpurge_flusher_failures_total', { kind: 'permanent' }),
      ).toBe(0);

      pg = await startLocalPostgres({ dataDir, port });
      await f.drained(60_000);
      expect(await checkFinal(f, latest)).toEqual([]);
      expect(
        await metricValue(flusher.registry, 'walpurge_flusher_failures_total', { kind: 'permanent' }),
      ).toBe(0);
    } finally {
      await f.close();
      await pg.stop();
      rmSync(base, { recursive: true, force: true });
    }
  });

  it('graceful stop finishes the batch in flight and settles nothing unwritten; a new flusher finishes the rest', async () => {
    const f = await createFixture({
      databaseAdminUrl: services.databaseUrl,
      cacheRedisUrl: services.redisUrl,
      queueRedisUrl: queueRedis.url,
    });
    try {
      await f.pool.query(ITEMS_DDL);
      const flusher = await f.startFlusher({ batchSize: 20, batchDelayMs: 10 });
      const latest = new LatestWrites();
      const writing = writeRounds(f, latest, 20, 100, 'g');
      await waitFor(
        'some rows flushed',
        async () => (await metricValue(flusher.registry, 'walpurge_flusher_rows_flushed_total')) > 50,
      );
      await flusher.stop();
      await writing;
      expect(await checkInvariants(f, latest)).toEqual([]);
      const { rows } = await f.pool.query(
        "SELECT 1 FROM pg_stat_activity WHERE application_name = 'walpurge-flusher' AND datname = current_database()",
      );
      expect(rows).toHaveLength(0); // its session is closed, no transaction left open

      await f.startFlusher();
      await f.drained();
      expect(await checkFinal(f, latest)).toEqual([]);
    } finally {
      await f.close();
    }
  });
});
