import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QueueEvents } from 'bullmq';
import { Kafka, logLevel } from 'kafkajs';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createCacheClient, type CacheClient } from '@walpurge/client';
import { createWriteClientFromConfig, type WriteClient } from '@walpurge/client/write';
import type { WalpurgeConfig } from '@walpurge/config';
import { ErrorCode } from '@walpurge/core';
import {
  createIsolatedDatabase,
  killNow,
  spawnServiceMain,
  startLocalRedis,
  uniqueName,
  waitFor,
  type IsolatedDatabase,
  type LocalRedis,
  type ServiceProcess,
} from '@walpurge/testing';
import {
  E2E_STACK_CONFIG,
  parseE2eConfig,
  startStack,
  type WalpurgeStack,
} from './support/walpurge-stack.js';

/**
 * The whole write-behind system under concurrency, for WALPURGE_SOAK_MS (default 60 s): writers mix
 * write-behind upserts and deletes, write-through upserts and deletes (and partial rows, which are
 * refused at accept) on a small hot set of rows, readers fill the cache through leases, and the
 * commits come back through the pipeline (listener → Kafka → invalidator). The flusher runs as TWO
 * separate processes, as deployed, each naming its database sessions (application_name) so the test
 * acts on one process's batch: A is frozen (SIGSTOP) inside one of its batches until BullMQ declares
 * its jobs stalled and B takes them up, then thawed; B is killed with SIGKILL inside one of its
 * batches and replaced by a new process. At the end A and the replacement must still run, with no
 * fatal log.
 *
 * When the writers stop and everything has drained, every row in PostgreSQL is the last ACCEPTED
 * write (the highest version an accept returned), or absent if that was a delete, and the cache holds
 * that same value or nothing, never an older one.
 */
const RUN_MS = Number(process.env['WALPURGE_SOAK_MS'] ?? 60_000);
const ROWS = 50;
const WRITERS = 6;
const READERS = 4;
/** Short, so that a frozen flusher's jobs are declared stalled within seconds. */
const LOCK_DURATION_MS = 2_000;
/** Row the pipeline barrier updates; the workload never touches it. */
const BARRIER_ID = 0;

const services = inject('services');
const name = uniqueName('soak');
const prefix = `${name}:`;

const CONFIG = `${E2E_STACK_CONFIG}flusher:
  queueRedisUrl: \${QUEUE_REDIS_URL}
  keyPrefix: '\${PREFIX}wb:'
  replicationOrigin: \${NAME}
  tables: [public.items]
  batchSize: 40
  batchDelayMs: 5
  reconcileIntervalMs: 1000
  metricsIntervalMs: 500
  lockDurationMs: ${LOCK_DURATION_MS}
rules:
  - table: public.items
    redis:
      keys: ['item:{id}']
`;

type Flusher = ServiceProcess & {
  /** Its sessions' application_name in pg_stat_activity: tells this process's batches from the others'. */
  appName: string;
};

/** The flusher as its own process, exactly as deployed, naming its database sessions. */
function spawnFlusher(configFile: string, appName: string): Flusher {
  return Object.assign(spawnServiceMain('services/flusher/src/main.ts', configFile), { appName });
}

/** A database URL whose sessions carry this application_name (libpq semantics: it overrides the client's). */
function withAppName(url: string, appName: string): string {
  const parsed = new URL(url);
  parsed.searchParams.set('application_name', appName);
  return parsed.toString();
}

const sleep = (ms: number): Promise<void> => new Promise((done) => setTimeout(done, ms));
const randomInt = (below: number): number => Math.floor(Math.random() * below);

interface Accepted {
  version: bigint;
  /** undefined: the last accepted operation was a delete. */
  value: { value: string; n: number } | undefined;
  what: string;
}

/** The last accepted operation per row: the highest version any accept returned. */
class AcceptedWrites {
  readonly rows = new Map<number, Accepted>();
  record(id: number, version: string, value: Accepted['value'], what: string): void {
    const seen = this.rows.get(id);
    if (!seen || BigInt(version) > seen.version) this.rows.set(id, { version: BigInt(version), value, what });
  }
}

const show = (value: Accepted['value'] | null | undefined): string =>
  value ? `{value: ${value.value}, n: ${value.n}}` : 'no row';

describe('write-behind under concurrency: two flusher processes, a stall and a kill -9', () => {
  let queueRedis: LocalRedis;
  let db: IsolatedDatabase;
  let pool: pg.Pool;
  let redis: Redis;
  let stack: WalpurgeStack | undefined;
  let writer: WriteClient;
  let readerClient: CacheClient;
  let dir: string;
  let config: WalpurgeConfig;
  const flushers: Flusher[] = [];

  beforeAll(async () => {
    queueRedis = await startLocalRedis({ persistent: true });
    db = await createIsolatedDatabase(services.databaseUrl, 'e2e_soak');
    pool = new pg.Pool({ connectionString: db.url, max: 12 });
    pool.on('error', () => undefined);
    await pool.query(`CREATE TABLE items (
      id int PRIMARY KEY, value text NOT NULL, n int NOT NULL, _walpurge_version bigint NOT NULL DEFAULT 0)`);
    await pool.query('ALTER TABLE items REPLICA IDENTITY FULL');
    // Every row costs a little, so that a batch is inside its transaction most of the time (a
    // freeze or a kill then lands mid-batch).
    await pool.query(
      `CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.002); RETURN NEW; END $$`,
    );
    await pool.query(
      'CREATE TRIGGER slow BEFORE INSERT OR UPDATE ON items FOR EACH ROW EXECUTE FUNCTION slow()',
    );
    await pool.query("INSERT INTO items (id, value, n) VALUES ($1, 'barrier', 0)", [BARRIER_ID]);
    config = parseE2eConfig(CONFIG, {
      TRANSPORT: 'kafka',
      DATABASE_URL: db.url,
      NAME: name,
      KAFKA_BROKER: services.kafkaBrokers[0] ?? '',
      REDIS_URL: services.redisUrl,
      QUEUE_REDIS_URL: queueRedis.url,
      PREFIX: prefix,
    });
    dir = mkdtempSync(join(tmpdir(), 'wb-soak-'));
    // The pipeline in this process (it is not what is killed); the flushers are their own processes.
    stack = await startStack(config, ['invalidator', 'listener']);
    redis = new Redis(services.redisUrl);
    readerClient = createCacheClient({ redis, keyPrefix: prefix, earlyRefreshBeta: 0 });
    writer = createWriteClientFromConfig(config, {
      keys: (_table, row) => [`item:${String(row['id'])}`],
    });
  });

  /** Starts a flusher process whose database sessions are named `walpurge-flusher-<label>`. */
  function startFlusher(label: string): Flusher {
    const appName = `walpurge-flusher-${label}`;
    const configFile = join(dir, `walpurge-${label}.yaml`);
    const own = { ...config, database: { ...config.database, url: withAppName(db.url, appName) } };
    // JSON is YAML: the file is what an operator would write.
    writeFileSync(configFile, JSON.stringify({ ...own, http: { port: 0, host: '127.0.0.1' } }, null, 2));
    return spawnFlusher(configFile, appName);
  }

  afterAll(async () => {
    for (const child of flushers) await killNow(child);
    await stack?.stop();
    await writer?.close();
    await readerClient?.close();
    redis?.disconnect();
    await pool?.end();
    await db?.drop();
    await queueRedis?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
    const admin = new pg.Client({ connectionString: services.databaseUrl });
    await admin.connect();
    await admin
      .query(
        'SELECT pg_replication_origin_drop(roname) FROM pg_replication_origin WHERE roname = $1 OR roname LIKE $2',
        [name, `${name}\\_%`],
      )
      .catch(() => undefined);
    await admin.end();
    const kafka = new Kafka({ brokers: services.kafkaBrokers, logLevel: logLevel.NOTHING }).admin();
    await kafka.connect();
    await kafka.deleteTopics({ topics: [name, `${name}_dlq`] }).catch(() => undefined);
    await kafka.disconnect();
  });

  it(
    `every row ends as its last accepted write, in PostgreSQL and in the cache (${RUN_MS} ms of load)`,
    { timeout: RUN_MS + 240_000 },
    async () => {
      const accepted = new AcceptedWrites();
      const counts = {
        writeBehind: 0,
        deleteBehind: 0,
        writeThrough: 0,
        deleteThrough: 0,
        partialRefused: 0,
        reads: 0,
      };
      const unexpected: string[] = [];
      /** Every job BullMQ declared stalled, and every job that became active, in order. */
      const stalledJobs: string[] = [];
      const activeJobs: string[] = [];
      const queueEvents = new QueueEvents(config.flusher!.queueName, {
        connection: { url: queueRedis.url },
        prefix: writer.layout.bullPrefix,
      });
      queueEvents.on('stalled', ({ jobId }) => stalledJobs.push(jobId));
      queueEvents.on('active', ({ jobId }) => activeJobs.push(jobId));
      await queueEvents.waitUntilReady();
      /** Jobs declared stalled while flusher A was frozen and then taken up while it still was (so by B). */
      let stalledWhileFrozen: string[] = [];
      let rerunWhileFrozen: string[] = [];
      let killedInBatch: Flusher | undefined;

      const flusherA = startFlusher('a');
      const flusherB = startFlusher('b');
      flushers.push(flusherA, flusherB);
      const deadline = Date.now() + RUN_MS;
      // The load goes on until the freeze and the kill are done, however long they took.
      let chaosDone = false;
      const loading = (): boolean => Date.now() < deadline || !chaosDone;
      let seq = 0;

      async function writeOne(w: number): Promise<void> {
        const id = 1 + randomInt(ROWS);
        const tag = `w${w}-${(seq += 1)}`;
        const row = { id, value: tag, n: seq };
        const dice = randomInt(100);
        try {
          if (dice < 45) {
            const { version } = await writer.writeBehind('items', row);
            accepted.record(id, version, { value: row.value, n: row.n }, `writeBehind ${tag}`);
            counts.writeBehind += 1;
          } else if (dice < 55) {
            const { version } = await writer.deleteBehind('items', { id });
            accepted.record(id, version, undefined, `deleteBehind ${tag}`);
            counts.deleteBehind += 1;
          } else if (dice < 75) {
            const { version } = await writer.writeThrough('items', row);
            accepted.record(id, version, { value: row.value, n: row.n }, `writeThrough ${tag}`);
            counts.writeThrough += 1;
          } else if (dice < 85) {
            const { version } = await writer.deleteThrough('items', { id });
            accepted.record(id, version, undefined, `deleteThrough ${tag}`);
            counts.deleteThrough += 1;
          } else if (dice < 88) {
            // A partial row: refused at accept, before anything is queued or cached.
            const error = await writer.writeBehind('items', { id, value: `partial-${tag}` }).then(
              () => undefined,
              (e: unknown) => e,
            );
            if ((error as { code?: string } | undefined)?.code === ErrorCode.WriteInvalid)
              counts.partialRefused += 1;
            else unexpected.push(`partial row ${tag} for row ${id} was not refused: ${String(error)}`);
          } else {
            await sleep(randomInt(3));
          }
        } catch (error) {
          unexpected.push(`row ${id}, ${tag}: ${String(error)}`);
        }
      }

      async function readOne(): Promise<void> {
        const id = 1 + randomInt(ROWS);
        try {
          await readerClient.get(
            `item:${id}`,
            async () => {
              const { rows } = await pool.query<{ id: number; value: string; n: number }>(
                'SELECT id, value, n FROM items WHERE id = $1',
                [id],
              );
              // Widen the window between reading PostgreSQL and filling: the race leases must win.
              await sleep(randomInt(20));
              return rows[0] ?? null;
            },
            { ttl: 600 },
          );
          counts.reads += 1;
        } catch (error) {
          unexpected.push(`read of row ${id}: ${String(error)}`);
        }
      }

      const loops = [
        ...Array.from({ length: WRITERS }, async (_, w) => {
          while (loading()) await writeOne(w);
        }),
        ...Array.from({ length: READERS }, async () => {
          while (loading()) await readOne();
        }),
      ];

      /** This flusher process (and no other) has a transaction open: it is inside a batch. */
      const inTransaction = async (flusher: Flusher): Promise<boolean> => {
        const { rows } = await pool.query(
          "SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database() AND xact_start IS NOT NULL AND state <> 'idle'",
          [flusher.appName],
        );
        return rows.length > 0;
      };
      const hasSession = async (flusher: Flusher): Promise<boolean> => {
        const { rows } = await pool.query(
          'SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()',
          [flusher.appName],
        );
        return rows.length > 0;
      };
      const flusherOutput = (): string => flushers.map((child) => child.output.join('')).join('\n---\n');

      const chaos = (async () => {
        // 1. Freeze flusher A inside one of its batches until BullMQ declares its jobs stalled and
        // flusher B takes them up. Only stalls after the SIGSTOP count: a stray one earlier proves
        // nothing about the freeze.
        await sleep(RUN_MS * 0.2);
        for (let attempt = 0; rerunWhileFrozen.length === 0; attempt += 1) {
          if (attempt >= 5)
            throw new Error(
              `freezing flusher A never got a job stalled and re-run (stalled while frozen: ${stalledWhileFrozen.join(', ')})\n${flusherOutput()}`,
            );
          await waitFor('flusher A inside a batch', () => inTransaction(flusherA), {
            timeoutMs: 60_000,
            intervalMs: 5,
          });
          flusherA.kill('SIGSTOP');
          const stalledBefore = stalledJobs.length;
          const activeBefore = activeJobs.length;
          try {
            // A is stopped: no job can become active through it, so an active event for a job that
            // stalled now is B re-running it.
            await waitFor(
              'a job of frozen flusher A stalled and re-run by flusher B',
              async () => {
                stalledWhileFrozen = [...new Set(stalledJobs.slice(stalledBefore))];
                const stalled = new Set(stalledWhileFrozen);
                rerunWhileFrozen = [
                  ...new Set(activeJobs.slice(activeBefore).filter((id) => stalled.has(id))),
                ];
                return rerunWhileFrozen.length > 0;
              },
              { timeoutMs: LOCK_DURATION_MS * 15, intervalMs: 50 },
            ).catch(() => undefined);
          } finally {
            flusherA.kill('SIGCONT');
          }
        }
        // 2. kill -9 flusher B inside one of its batches, and start a replacement.
        await sleep(Math.max(0, deadline - RUN_MS * 0.45 - Date.now()));
        await waitFor('flusher B inside a batch', () => inTransaction(flusherB), {
          timeoutMs: 60_000,
          intervalMs: 5,
        });
        flushers.splice(flushers.indexOf(flusherB), 1);
        await killNow(flusherB);
        killedInBatch = flusherB;
        const replacement = startFlusher('c');
        flushers.push(replacement);
        // PostgreSQL ended the killed process's session (rolling back its batch), and the
        // replacement is up with its own.
        await waitFor('the killed flusher B session gone', async () => !(await hasSession(flusherB)), {
          timeoutMs: 60_000,
          intervalMs: 50,
        });
        await waitFor('the replacement flusher connected', () => hasSession(replacement), {
          timeoutMs: 60_000,
          intervalMs: 50,
        });
      })().finally(() => (chaosDone = true));

      await Promise.all([...loops, chaos]);
      await queueEvents.close();
      expect(unexpected).toEqual([]);

      // Drain: every accepted write-behind reached PostgreSQL (or failed, which the check shows).
      const queue = new Redis(queueRedis.url);
      try {
        await waitFor(
          'write-behind queue drained',
          async () => (await queue.zcard(writer.layout.index)) === 0,
          {
            timeoutMs: 180_000,
            intervalMs: 50,
          },
        ).catch((error: unknown) => {
          throw new Error(`${String(error)}\nflusher output:\n${flusherOutput()}`);
        });
      } finally {
        queue.disconnect();
      }
      // Drain the pipeline: a commit after all the others, purged by the invalidator, means every
      // earlier commit's purge is done.
      const barrierKey = `${prefix}item:${BARRIER_ID}`;
      await waitFor(
        'the pipeline drained',
        async () => {
          await readerClient.get(`item:${BARRIER_ID}`, async () => 'barrier', { ttl: 600 });
          if ((await redis.exists(barrierKey)) === 0) return false; // get() fails open when Redis is slow
          await pool.query("UPDATE items SET value = value || '.' WHERE id = $1", [BARRIER_ID]);
          await waitFor('the barrier purged', async () => (await redis.exists(barrierKey)) === 0, {
            timeoutMs: 60_000,
            intervalMs: 20,
          });
          return true;
        },
        { timeoutMs: 60_000, intervalMs: 100 },
      );

      const { rows } = await pool.query<{ id: number; value: string; n: number }>(
        'SELECT id, value, n FROM items WHERE id <> $1',
        [BARRIER_ID],
      );
      const inDb = new Map(rows.map((row) => [row.id, { value: row.value, n: row.n }]));
      const problems: string[] = [];
      for (const id of inDb.keys())
        if (!accepted.rows.has(id)) problems.push(`row ${id}: in PostgreSQL but never accepted`);
      for (const [id, want] of accepted.rows) {
        const found = inDb.get(id);
        if (show(found) !== show(want.value))
          problems.push(
            `row ${id}: PostgreSQL holds ${show(found)}, expected ${show(want.value)} (last accepted: ${want.what} @${want.version})`,
          );
        const payload = await redis.hgetBuffer(`${prefix}item:${id}`, 'v');
        if (payload) {
          const cached = JSON.parse(payload.subarray(1).toString('utf8')) as {
            value?: string;
            n?: number;
          } | null;
          const cachedShown = show(
            cached && cached.value !== undefined ? { value: cached.value, n: cached.n ?? NaN } : undefined,
          );
          if (cachedShown !== show(want.value))
            problems.push(
              `row ${id}: cache holds ${cachedShown}, expected ${show(want.value)} or nothing (last accepted: ${want.what} @${want.version})`,
            );
        }
      }
      console.log(
        `write-behind soak, ${RUN_MS} ms: accepted writeBehind ${counts.writeBehind}, deleteBehind ${counts.deleteBehind}, ` +
          `writeThrough ${counts.writeThrough}, deleteThrough ${counts.deleteThrough}; partial rows refused ${counts.partialRefused}; ` +
          `reads ${counts.reads}; stalled jobs ${stalledJobs.length} (while A frozen ${stalledWhileFrozen.length}, ` +
          `re-run by B ${rerunWhileFrozen.length}); flusher B killed in a batch: ${killedInBatch?.signalCode ?? 'no'}; ` +
          `rows checked ${accepted.rows.size}`,
      );
      expect(problems).toEqual([]);
      expect(stalledWhileFrozen.length).toBeGreaterThan(0);
      expect(rerunWhileFrozen.length).toBeGreaterThan(0);
      expect(killedInBatch?.signalCode).toBe('SIGKILL');
      // The thawed flusher A and the replacement are still running, and never logged a fatal error.
      const survivors = flushers.map((child) => ({
        app: child.appName,
        exitCode: child.exitCode,
        signalCode: child.signalCode,
        fatal: child.output.join('').includes('"level":60'),
      }));
      expect(survivors).toEqual([
        { app: 'walpurge-flusher-a', exitCode: null, signalCode: null, fatal: false },
        { app: 'walpurge-flusher-c', exitCode: null, signalCode: null, fatal: false },
      ]);
      expect(counts.partialRefused).toBeGreaterThan(0);
    },
  );
});
