import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { PayloadCodec, createCacheClient, jsonSerializer } from '@walpurge/client';
import { parseConfigText } from '@walpurge/config';
import { createLogger } from '@walpurge/core';
import type { ChangeEvent } from '@walpurge/protocol';
import {
  WaitForAbortError,
  createIsolatedDatabase,
  endPool,
  uniqueName,
  waitFor,
  type IsolatedDatabase,
} from '@walpurge/testing';
// The CLI's composition root, exactly what `walpurge run --role all` starts (imported by path: the
// `walpurge` package exports only its command-line entry).
import { startWalpurge, type RunningWalpurge } from '../../packages/cli/src/run/start-walpurge.js';

/**
 * The stale-set race, end to end. Readers do cache-aside against a live table while writers commit
 * updates; NOBODY in the application purges anything: walpurge (embedded: listener on the
 * replication slot → invalidator → Redis UNLINK, transport inline) does. The race: a reader loads a
 * row, a writer commits, the pipeline purges the key, and THEN the reader stores what it loaded.
 * The window is widened so that the race happens many times per run, whatever the machine's load:
 * loaders pause at random between reading Postgres and returning, and a loader whose row was
 * written during that pause returns only after walpurge reported that write purged (a loader
 * slower than the pipeline: the real race, not a simulated purge).
 *
 * After readers and writers stop, the pipeline is drained (a marker commit has been purged and the
 * slot's confirmed LSN has passed it: every earlier commit's purge is done) and a checker compares
 * every cached key with the database. Plain GET / load / SET must leave stale keys (the checker
 * works); @walpurge/client leases must leave none.
 */
const ROWS = 24;
const READERS = 24;
const WRITERS = 4;
const RUN_MS = 3_000;
/**
 * Readers go on this long after the writers stopped, while the last purges land: a row whose last
 * write raced a fill keeps the stale value (hits serve it), every other row is refilled from the
 * final data, so the checker sees most rows cached.
 */
const READ_ON_MS = 500;
/** Upper bound of the loader's random pause between its SELECT and returning. */
const LOADER_DELAY_MS = 100;
/** Longest a loader waits for the purge of a write it overlapped (the drain check catches a lost one). */
const PURGE_WAIT_CAP_MS = 5_000;
/** Row the drain marker updates; the workload never touches it. */
const MARKER_ID = 0;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const randomInt = (below: number): number => Math.floor(Math.random() * below);
const rowVersion = (id: number, value: number): string => `${id}:${value}`;

/** Resolves when `promise` does or after `ms`, whichever comes first (never rejects on timeout). */
async function within(promise: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([promise, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

interface CheckResult {
  checked: number;
  stale: number;
  staleKeys: string[];
}

interface WorkloadResult {
  reads: number;
  writes: number;
  /** Loads that read a row a writer changed before they returned: each one a stale-set race. */
  racedLoads: number;
}

const services = inject('services');
const name = uniqueName('race_e2e');
const prefix = `${name}:`;

const CONFIG = `
transport: inline
database:
  url: \${DATABASE_URL}
  slot: ${name}
  publication: ${name}
  statusIntervalMs: 500
  heartbeatIntervalMs: 0
redis:
  url: \${REDIS_URL}
  keyPrefix: '${prefix}'
http: { host: 127.0.0.1 }
rules:
  # One key per variant so both run against the same pipeline; the SDK's entries (hash with value
  # and lease) and the plain strings are purged by the same UNLINK.
  - table: public.items
    redis:
      keys: ['leased:item:{id}', 'plain:item:{id}']
`;

describe('stale-set race against walpurge running embedded (slot → invalidator → Redis)', () => {
  let db: IsolatedDatabase;
  let pool: pg.Pool;
  let redis: Redis;
  let walpurge: RunningWalpurge | undefined;
  /** Every row version the invalidator reported purged → its commit LSN and when. */
  const purged = new Map<string, { lsn: string; at: number }>();
  /** Callers waiting for a row version's purge to be reported. */
  const purgeWaiters = new Map<string, Array<() => void>>();
  /** Every row version a writer committed → when the commit returned. */
  const committed = new Map<string, number>();
  /** Highest committed value per row id. */
  const latestValue = new Map<number, number>();
  let racedLoads = 0;

  beforeAll(async () => {
    db = await createIsolatedDatabase(services.databaseUrl, 'race_e2e');
    pool = new pg.Pool({ connectionString: db.url, max: 16 });
    await pool.query('CREATE TABLE items (id int PRIMARY KEY, value int NOT NULL)');
    await pool.query('INSERT INTO items SELECT g, 0 FROM generate_series($1::int, $2::int) g', [
      MARKER_ID,
      ROWS,
    ]);
    redis = new Redis(services.redisUrl);

    const { config } = parseConfigText(CONFIG, 'race.walpurge.yaml', {
      env: { DATABASE_URL: db.url, REDIS_URL: services.redisUrl },
    });
    const running = await startWalpurge({
      config,
      role: 'all',
      httpPort: 0,
      logger: createLogger({ level: process.env['LOG_LEVEL'] ?? 'error', pretty: false }),
      onPurged: (events, at) => recordPurged(events, at),
    });
    walpurge = running;
    let fatal: Error | undefined;
    void running.fatal.then((error) => (fatal = error));
    await waitFor(
      'walpurge (role all, inline) ready',
      async () => {
        if (fatal) throw new WaitForAbortError(`walpurge stopped: ${fatal.message}`, { cause: fatal });
        return running.isReady();
      },
      { timeoutMs: 90_000, intervalMs: 50 },
    );
  });

  afterAll(async () => {
    await walpurge?.stop();
    if (redis) {
      const keys = await scanKeys(`${prefix}*`).catch(() => [] as string[]);
      if (keys.length > 0) await redis.unlink(...keys);
      redis.disconnect();
    }
    if (pool) await endPool(pool);
    await db?.drop();
  });

  function recordPurged(events: readonly ChangeEvent[], at: number): void {
    for (const event of events) {
      if (event.source.table !== 'items' || !event.after) continue;
      const version = rowVersion(Number(event.after['id']), Number(event.after['value']));
      purged.set(version, { lsn: event.source.lsn, at });
      for (const resolve of purgeWaiters.get(version) ?? []) resolve();
      purgeWaiters.delete(version);
    }
  }

  function purgeReported(version: string): Promise<void> {
    if (purged.has(version)) return Promise.resolve();
    return new Promise((resolve) =>
      purgeWaiters.set(version, [...(purgeWaiters.get(version) ?? []), resolve]),
    );
  }

  async function loadRow(id: number): Promise<number> {
    const { rows } = await pool.query<{ value: number }>('SELECT value FROM items WHERE id = $1', [id]);
    const value = rows[0]!.value;
    await sleep(randomInt(LOADER_DELAY_MS)); // the slow store after the read: the race window
    // Written meanwhile? Then this value is already outdated: return (and be stored) only after
    // walpurge purged that write, however fast or slow the pipeline is right now.
    const latest = latestValue.get(id) ?? value;
    if (latest > value) {
      racedLoads += 1;
      await within(purgeReported(rowVersion(id, latest)), PURGE_WAIT_CAP_MS);
    }
    return value;
  }

  async function runWorkload(read: (id: number) => Promise<number>): Promise<WorkloadResult> {
    const writersStopAt = Date.now() + RUN_MS;
    const stopAt = writersStopAt + READ_ON_MS;
    let reads = 0;
    let writes = 0;
    racedLoads = 0;
    const readers = Array.from({ length: READERS }, async () => {
      while (Date.now() < stopAt) {
        await read(1 + randomInt(ROWS));
        reads += 1;
        // Yield between hits: the pipeline shares this event loop and must not starve behind them.
        await sleep(randomInt(2));
      }
    });
    const writers = Array.from({ length: WRITERS }, async () => {
      while (Date.now() < writersStopAt) {
        const id = 1 + randomInt(ROWS);
        const { rows } = await pool.query<{ value: number }>(
          'UPDATE items SET value = value + 1 WHERE id = $1 RETURNING value', // autocommit
          [id],
        );
        const value = rows[0]!.value;
        committed.set(rowVersion(id, value), Date.now());
        latestValue.set(id, Math.max(value, latestValue.get(id) ?? 0));
        writes += 1;
        await sleep(randomInt(10));
      }
    });
    await Promise.all([...readers, ...writers]);
    return { reads, writes, racedLoads };
  }

  /**
   * The correctness criterion is the pipeline's own progress, never a sleep: a marker commit after
   * the last write is reported purged by the invalidator, and the slot's confirmed LSN (advanced only
   * past commits whose purges succeeded, in commit order) has passed it.
   */
  async function drainPipeline(): Promise<void> {
    const { rows } = await pool.query<{ value: number }>(
      'UPDATE items SET value = value + 1 WHERE id = $1 RETURNING value',
      [MARKER_ID],
    );
    const marker = rowVersion(MARKER_ID, rows[0]!.value);
    const { lsn } = await waitFor('the drain marker purged', async () => purged.get(marker), {
      timeoutMs: 60_000,
      intervalMs: 10,
    });
    await waitFor(
      `slot ${name} confirmed past the marker commit ${lsn}`,
      async () => {
        const result = await pool.query<{ passed: boolean }>(
          'SELECT confirmed_flush_lsn > $1::pg_lsn AS passed FROM pg_replication_slots WHERE slot_name = $2',
          [lsn, name],
        );
        return result.rows[0]?.passed === true;
      },
      { timeoutMs: 60_000, intervalMs: 20 },
    );
    // Every commit of the workload went through the pipeline (not one purge was skipped).
    const missing = [...committed.keys()].filter((version) => !purged.has(version));
    expect(missing, 'row versions committed but never reported purged').toEqual([]);
  }

  /** Every cached `${variant}:item:N` key in Redis against the row in Postgres. */
  async function check(
    variant: string,
    readCached: (key: string) => Promise<number | undefined>,
  ): Promise<CheckResult> {
    const { rows } = await pool.query<{ id: number; value: number }>('SELECT id, value FROM items');
    const truth = new Map(rows.map((row) => [row.id, row.value]));
    const keyPrefix = `${prefix}${variant}:item:`;
    const result: CheckResult = { checked: 0, stale: 0, staleKeys: [] };
    for (const key of await scanKeys(`${keyPrefix}*`)) {
      const cached = await readCached(key);
      if (cached === undefined) continue; // e.g. an SDK entry holding only a lease
      result.checked += 1;
      const id = Number(key.slice(keyPrefix.length));
      const current = truth.get(id);
      if (cached !== current) {
        result.stale += 1;
        result.staleKeys.push(`${key}=${cached} (db ${String(current)})`);
      }
    }
    return result;
  }

  async function scanKeys(match: string): Promise<string[]> {
    const found = new Set<string>(); // SCAN may return a key twice
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', match, 'COUNT', 100);
      cursor = next;
      for (const key of keys) found.add(key);
    } while (cursor !== '0');
    return [...found];
  }

  function describeWorkload({ reads, writes, racedLoads }: WorkloadResult): string {
    return `${reads} reads, ${writes} writes, ${racedLoads} raced loads`;
  }

  function latencySummary(since: number): string {
    const latencies = [...committed.entries()]
      .filter(([, at]) => at >= since)
      .map(([version, at]) => Math.max(0, (purged.get(version)?.at ?? at) - at))
      .sort((a, b) => a - b);
    const at = (q: number): number =>
      latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
    return `commit→purge p50 ${at(0.5)} ms, p99 ${at(0.99)} ms, max ${at(1)} ms`;
  }

  it('plain cache-aside (GET / load / SET) leaves stale entries: the checker catches them', async () => {
    const started = Date.now();
    const workload = await runWorkload(async (id) => {
      const key = `${prefix}plain:item:${id}`;
      const hit = await redis.get(key);
      if (hit !== null) return Number(hit);
      const value = await loadRow(id);
      await redis.set(key, String(value), 'EX', 60);
      return value;
    });
    await drainPipeline();
    const result = await check('plain', async (key) => {
      const raw = await redis.get(key);
      return raw === null ? undefined : Number(raw);
    });
    console.info(
      `[race e2e] plain: ${describeWorkload(workload)}, ${result.checked} cached keys checked, ` +
        `${result.stale} stale (${result.staleKeys.join(', ')}); ${latencySummary(started)}`,
    );
    expect(result.checked).toBeGreaterThan(0);
    expect(result.stale).toBeGreaterThan(0);
  });

  it('with leases (@walpurge/client get) the same workload leaves zero stale keys', async () => {
    const started = Date.now();
    // coalesce off: every reader races on its own, as separate processes would.
    const client = createCacheClient({ redis, keyPrefix: `${prefix}leased:`, coalesce: false });
    let workload: WorkloadResult;
    try {
      workload = await runWorkload((id) => client.get(`item:${id}`, () => loadRow(id), { ttl: 60 }));
    } finally {
      await client.close();
    }
    await drainPipeline();
    const codec = new PayloadCodec(jsonSerializer);
    const result = await check('leased', async (key) => {
      const payload = await redis.hgetBuffer(key, 'v');
      return payload === null ? undefined : ((await codec.decode(payload)) as number);
    });
    const rejections = (await client.metrics.fillRejections.get()).values[0]?.value ?? 0;
    console.info(
      `[race e2e] leased: ${describeWorkload(workload)}, ${result.checked} cached keys checked, ` +
        `${result.stale} stale, ${rejections} fills rejected; ${latencySummary(started)}`,
    );
    expect(result.checked).toBeGreaterThan(0);
    // The race did happen (the pipeline's purges refused fills), and none of it left a stale entry.
    expect(rejections).toBeGreaterThan(0);
    expect(result.staleKeys).toEqual([]);
  });
});
