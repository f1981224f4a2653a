import { createServer, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ENTRY_FIELDS } from '@walpurge/client';
import { InspectConfig, WalpurgeConfig } from '@walpurge/config';
import { createLogger, createMetricsRegistry } from '@walpurge/core';
import type { ChangeEvent } from '@walpurge/protocol';
import {
  createIsolatedDatabase,
  freePort,
  uniqueName,
  waitFor,
  type IsolatedDatabase,
} from '@walpurge/testing';
import { createRowPool } from './check/row-pool.js';
import { createInspectMetrics } from './metrics.js';
import { Observer } from './observer.js';
import type { InspectReport } from './report/inspect-report.js';

/**
 * The observer's verdicts on real PostgreSQL and Redis: entries written the way @walpurge/client
 * writes them (ENTRY_FIELDS), plain JSON values for other writers, rows re-read to confirm.
 */
const services = inject('services');
const prefix = `${uniqueName('inspect')}:`;
let database: IsolatedDatabase;
let db: pg.Client;
let redis: Redis;
let pool: pg.Pool;
const observers: Observer[] = [];

const config = WalpurgeConfig.parse({
  redis: { url: services.redisUrl, keyPrefix: prefix },
  rules: [
    { name: 'items', table: 'public.items', version: 'ver', redis: { keys: ['item:{id}'] } },
    { name: 'plain', table: 'public.plain', version: 'ver', redis: { keys: ['plain:{id}'] } },
    { name: 'unversioned', table: 'public.items', redis: { keys: ['other:{id}'] } },
  ],
});

function observer(
  inspect: Partial<InspectConfig> = {},
  random?: () => number,
  metrics = createInspectMetrics(createMetricsRegistry()),
  feed?: 'stream' | 'after-purge',
): Observer {
  const created = new Observer({
    config,
    inspect: InspectConfig.parse({ sampleRate: 1, timescalesMs: [150], ...inspect }),
    redis,
    pool,
    metrics,
    logger: createLogger({ level: 'silent' }),
    ...(random ? { random } : {}),
    ...(feed ? { feed } : {}),
  });
  observers.push(created);
  return created;
}

function change(table: string, op: 'c' | 'u' | 'd', id: number, ver: number): ChangeEvent {
  const row = { id, ver: String(ver) };
  return {
    v: 1,
    op,
    source: {
      db: database.name,
      schema: 'public',
      table,
      lsn: `0/${(1000 + id).toString(16).toUpperCase()}`,
      xid: 1,
      commitTs: new Date().toISOString(),
      origin: null,
    },
    key: { id },
    before: op === 'c' ? null : row,
    after: op === 'd' ? null : row,
    unchanged: [],
  };
}

/** The change as the observer receives it `ms` after its commit (a lagging consumer, a starved loop). */
function seenLate(event: ChangeEvent, ms: number): ChangeEvent {
  return { ...event, source: { ...event.source, commitTs: new Date(Date.now() - ms).toISOString() } };
}

/** A counter's value for the series whose labels include `labels`. */
async function counted(
  counter: { get(): Promise<{ values: Array<{ labels: object; value: number }> }> },
  labels: Record<string, string>,
): Promise<number> {
  const { values } = await counter.get();
  const matches = (series: object): boolean =>
    Object.entries(labels).every(([name, value]) => (series as Record<string, unknown>)[name] === value);
  return values.filter((v) => matches(v.labels)).reduce((sum, v) => sum + v.value, 0);
}

/** An SDK entry hash as @walpurge/client stores it. */
async function sdkEntry(key: string, fields: { ver?: string; ft?: number; ls?: number }): Promise<void> {
  const hash: Record<string, string> = { [ENTRY_FIELDS.value]: 'j{"x":1}' };
  if (fields.ver !== undefined) hash[ENTRY_FIELDS.version] = fields.ver;
  if (fields.ft !== undefined) hash[ENTRY_FIELDS.filledAt] = String(fields.ft);
  if (fields.ls !== undefined) hash[ENTRY_FIELDS.loadStartedAt] = String(fields.ls);
  await redis.hset(prefix + key, hash);
}

/** A "Redis" that accepts connections and never answers: every read hangs until its deadline. */
async function frozenRedis(): Promise<{ redis: Redis; close(): void }> {
  const sockets: Socket[] = [];
  const frozen = createServer((socket) => sockets.push(socket));
  await new Promise<void>((resolve) => frozen.listen(0, '127.0.0.1', resolve));
  const port = (frozen.address() as { port: number }).port;
  const redis = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 1, lazyConnect: false });
  redis.on('error', () => undefined);
  return {
    redis,
    close() {
      redis.disconnect();
      for (const socket of sockets) socket.destroy();
      frozen.close();
    },
  };
}

const checked = (report: InspectReport): number => report.checks.reduce((sum, row) => sum + row.checked, 0);
const row = (report: InspectReport, writer: 'sdk' | 'other') =>
  report.checks.find((r) => r.writer === writer && r.timescale !== 'once' && r.checked > 0);

async function settle(observed: Observer, expected: number, timeoutMs?: number): Promise<InspectReport> {
  return waitFor(
    `${expected} checks`,
    async () => {
      const report = observed.report();
      return checked(report) >= expected && report;
    },
    timeoutMs === undefined ? {} : { timeoutMs },
  );
}

beforeAll(async () => {
  database = await createIsolatedDatabase(services.databaseUrl, 'inspect');
  db = new pg.Client({ connectionString: database.url });
  await db.connect();
  await db.query('CREATE TABLE items (id int PRIMARY KEY, ver bigint NOT NULL)');
  await db.query('CREATE TABLE plain (id int PRIMARY KEY, ver bigint NOT NULL)');
  redis = new Redis(services.redisUrl);
  pool = createRowPool({ url: database.url });
});

afterAll(async () => {
  for (const o of observers) await o.stop();
  await pool?.end();
  await db?.end();
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.unlink(...keys);
  redis.disconnect();
  await database?.drop();
});

describe('verdicts', () => {
  it('an absent key and an entry at the change version are consistent', async () => {
    await db.query('INSERT INTO items VALUES (1, 5), (2, 5)');
    await sdkEntry('item:2', { ver: '5', ft: Date.now() });
    const o = observer();
    o.offer([change('items', 'u', 1, 5), change('items', 'u', 2, 5)]);
    const report = await settle(o, 2);
    // Key 1 holds nothing: consistent, and counted apart as absent (not an entry that was checked).
    expect(row(report, 'sdk')).toMatchObject({
      checked: 2,
      consistent: 2,
      absent: 1,
      inconsistent: 0,
      atLeast: true,
    });
    expect(report.unchecked['rule-has-no-version']).toBe(2);
    expect(report.inconsistencies).toEqual([]);
  });

  it('an older SDK entry the database confirms is inconsistent: purge-missing, then stale-fill', async () => {
    await db.query('INSERT INTO items VALUES (3, 5), (4, 5)');
    const before = Date.now() - 1_000;
    await sdkEntry('item:3', { ver: '4', ft: before, ls: before });
    const o = observer();
    const stale = change('items', 'u', 3, 5);
    const refilled = change('items', 'u', 4, 5);
    // Filled after the commit from a load that started before it.
    await sdkEntry('item:4', { ver: '4', ft: Date.parse(refilled.source.commitTs) + 5, ls: before });
    o.offer([stale, refilled]);
    const report = await settle(o, 2);
    expect(row(report, 'sdk')).toMatchObject({ inconsistent: 2, nines: 0, atLeast: false });
    const causes = Object.fromEntries(report.inconsistencies.map((i) => [i.key, i]));
    expect(causes[`${prefix}item:3`]).toMatchObject({
      cause: 'purge-missing',
      entryVersion: '4',
      rowVersion: '5',
      rule: 'items',
      lsn: stale.source.lsn,
    });
    expect(causes[`${prefix}item:4`]).toMatchObject({
      cause: 'stale-fill',
      entryVersion: '4',
      rowVersion: '5',
    });
  });

  it('a candidate whose confirming row read fails is shown as unverifiable (row-read-failed), never dropped', async () => {
    // Nothing listens on this port: the confirm read fails at once.
    const unreachable = createRowPool({ url: `postgres://postgres@127.0.0.1:${await freePort()}/none` });
    await sdkEntry('item:9', { ver: '4', ft: Date.now() - 1_000 });
    const o = new Observer({
      config,
      inspect: InspectConfig.parse({ sampleRate: 1, timescalesMs: [150] }),
      redis,
      pool: unreachable,
      metrics: createInspectMetrics(createMetricsRegistry()),
      logger: createLogger({ level: 'silent' }),
    });
    observers.push(o);
    try {
      o.offer([change('items', 'u', 9, 5)]);
      const report = await settle(o, 1);
      expect(row(report, 'sdk')).toMatchObject({
        checked: 1,
        unverifiable: 1,
        inconsistent: 0,
        consistent: 0,
      });
      expect(report.unchecked['row-read-failed']).toBe(1);
    } finally {
      await unreachable.end();
    }
  });

  it('a plain JSON value of another writer is checked by its version field: other-writer', async () => {
    await db.query('INSERT INTO plain VALUES (5, 7), (6, 7)');
    await redis.set(`${prefix}plain:5`, JSON.stringify({ id: 5, ver: 6 }));
    await redis.set(`${prefix}plain:6`, 'not json');
    const o = observer();
    o.offer([change('plain', 'u', 5, 7), change('plain', 'u', 6, 7)]);
    const report = await settle(o, 2);
    expect(row(report, 'other')).toMatchObject({ checked: 2, inconsistent: 1, unverifiable: 1 });
    expect(report.inconsistencies[0]).toMatchObject({
      writer: 'other',
      cause: 'other-writer',
      rowVersion: '7',
    });
    expect(report.unchecked['plain-value-not-json']).toBe(1);
    expect(row(report, 'sdk')).toBeUndefined();
  });

  it('an SDK entry without a version is unverifiable, never consistent', async () => {
    await db.query('INSERT INTO items VALUES (7, 5)');
    await sdkEntry('item:7', { ft: Date.now() });
    const o = observer();
    o.offer([change('items', 'u', 7, 5)]);
    const report = await settle(o, 1);
    expect(row(report, 'sdk')).toMatchObject({ checked: 1, unverifiable: 1, consistent: 0, nines: null });
    expect(report.unchecked['entry-has-no-version']).toBe(1);
  });

  it('an SDK hash without a value (a lease, a write-side delete tombstone) is absent: consistent', async () => {
    const now = String(Date.now());
    await redis.hset(`${prefix}item:13`, { [ENTRY_FIELDS.leaseTakenAt]: now, lease: 'token', lx: now });
    await redis.hset(`${prefix}item:14`, { [ENTRY_FIELDS.writeVersion]: '3' });
    const o = observer();
    o.offer([change('items', 'u', 13, 5), change('items', 'd', 14, 5)]);
    const report = await settle(o, 2);
    expect(row(report, 'sdk')).toMatchObject({ checked: 2, consistent: 2, unverifiable: 0 });
    expect(report.unchecked['entry-has-no-version']).toBeUndefined();
  });

  it('the confirm step rejects a candidate the database contradicts', async () => {
    // The row holds an older version than the change claims (not monotonic), or is gone since.
    await db.query('INSERT INTO items VALUES (8, 3)');
    await sdkEntry('item:8', { ver: '4', ft: Date.now() - 1_000 });
    await sdkEntry('item:9', { ver: '4', ft: Date.now() - 1_000 });
    const o = observer();
    o.offer([change('items', 'u', 8, 5), change('items', 'u', 9, 5)]);
    const report = await settle(o, 2);
    expect(row(report, 'sdk')).toMatchObject({ checked: 2, unverifiable: 2, inconsistent: 0 });
    expect(report.unchecked['version-not-monotonic']).toBe(1);
    expect(report.unchecked['row-deleted-since']).toBe(1);
    expect(report.inconsistencies).toEqual([]);
  });

  it('a delete: an entry still present once the row is gone is inconsistent, an absent one consistent', async () => {
    await sdkEntry('item:10', { ver: '5', ft: Date.now() - 1_000 });
    const o = observer();
    o.offer([change('items', 'd', 10, 5), change('items', 'd', 11, 5)]);
    const report = await settle(o, 2);
    expect(row(report, 'sdk')).toMatchObject({ checked: 2, consistent: 1, inconsistent: 1 });
    expect(report.inconsistencies[0]).toMatchObject({
      key: `${prefix}item:10`,
      rowVersion: null,
      cause: 'purge-missing',
    });
  });

  it("checks the keys of the row as it is now only: an update's old key is unchecked (old-key)", async () => {
    // Row 30 became 31 (version 2); a new row 30 (version 1) now validly owns item:30.
    await db.query('INSERT INTO items VALUES (31, 2), (30, 1)');
    await sdkEntry('item:30', { ver: '1', ft: Date.now() });
    const o = observer();
    o.offer([{ ...change('items', 'u', 31, 2), before: { id: 30, ver: '1' } }]);
    const report = await settle(o, 1);
    expect(row(report, 'sdk')).toMatchObject({ checked: 1, consistent: 1, inconsistent: 0 });
    expect(report.unchecked['old-key']).toBe(1);
    expect(report.inconsistencies).toEqual([]);
  });

  it('records the time to consistency of an entry purged after the commit', async () => {
    await db.query('INSERT INTO items VALUES (12, 5)');
    await sdkEntry('item:12', { ver: '4', ft: Date.now() - 1_000 });
    // The check at the timescale must come after the unlink below, however loaded the machine.
    const o = observer({ timescalesMs: [10_000] });
    o.offer([change('items', 'u', 12, 5)]);
    await waitFor('a poll', async () => o.report().changesSampled === 1);
    await redis.unlink(`${prefix}item:12`);
    const report = await settle(o, 1, 20_000);
    expect(row(report, 'sdk')).toMatchObject({ consistent: 1 });
    expect(report.timeToConsistencyMs.sdk.count).toBe(1);
    expect(report.timeToConsistencyMs.sdk.p50).toBeGreaterThan(0);
    expect(report.timeToConsistencyMs.sdk.neverConsistent).toBe(0);
  });

  it('a key never consistent by the last timescale is counted apart, not in the time to consistency', async () => {
    await db.query('INSERT INTO items VALUES (15, 5)');
    await sdkEntry('item:15', { ver: '4', ft: Date.now() - 1_000 });
    const o = observer({ timescalesMs: [300] });
    o.offer([change('items', 'u', 15, 5)]);
    const report = await waitFor('the polls to stop', async () => {
      const current = o.report();
      return current.timeToConsistencyMs.sdk.neverConsistent === 1 && checked(current) === 1 && current;
    });
    expect(report.timeToConsistencyMs.sdk).toMatchObject({ count: 0, neverConsistent: 1, p99: 0 });
    expect(row(report, 'sdk')).toMatchObject({ inconsistent: 1 });
  });
});

describe('an observer that sees a change late', () => {
  it('does not call a check that starts past its tolerance consistent (checked-late); a confirmed stale entry is still inconsistent', async () => {
    await db.query('INSERT INTO items VALUES (41, 5)');
    await sdkEntry('item:41', { ver: '4', ft: Date.now() - 10_000 });
    const metrics = createInspectMetrics(createMetricsRegistry());
    // Due at commit + 300 ms (tolerance 250 ms), received 5 s after the commit: the checks start
    // some 4.7 s late. Key 40 is absent (consistent on time), key 41 stale.
    const o = observer({ timescalesMs: [300] }, undefined, metrics);
    o.offer([seenLate(change('items', 'u', 40, 5), 5_000), seenLate(change('items', 'u', 41, 5), 5_000)]);
    const report = await settle(o, 2);
    expect(row(report, 'sdk')).toMatchObject({
      checked: 2,
      consistent: 0,
      absent: 0,
      inconsistent: 1,
      unverifiable: 1,
    });
    expect(report.unchecked['checked-late']).toBe(1);
    expect(report.inconsistencies).toMatchObject([{ key: `${prefix}item:41`, timescale: '300ms' }]);
    expect(await counted(metrics.unchecked, { rule: 'items', reason: 'checked-late' })).toBe(1);
    expect(await counted(metrics.checks, { timescale: '300ms', verdict: 'unverifiable' })).toBe(1);
    expect(await counted(metrics.checks, { timescale: '300ms', verdict: 'consistent' })).toBe(0);
  });

  it('inspect --once checks old changes now, on purpose: it has no due time to be late for', async () => {
    const o = observer({ timescalesMs: [300] });
    await o.checkNow([seenLate(change('items', 'u', 43, 5), 60_000)]);
    const report = o.report();
    expect(report.checks.find((r) => r.timescale === 'once' && r.writer === 'sdk')).toMatchObject({
      checked: 1,
      consistent: 1,
    });
    expect(report.unchecked['checked-late']).toBeUndefined();
    expect(report.arrivalLagMs.count).toBe(0);
  });

  it("leaves its time to consistency out (the observer's lag, not the system's), counts it, and reports the arrival lag", async () => {
    const metrics = createInspectMetrics(createMetricsRegistry());
    // Received 2 s after the commit: its first poll finds the absent key consistent at once, but
    // "2 s" would be the observer's lag. Its check, due 3 s later, is on time: judged as usual.
    const o = observer({ timescalesMs: [5_000] }, undefined, metrics);
    o.offer([seenLate(change('items', 'u', 42, 5), 2_000)]);
    const report = await settle(o, 1, 20_000);
    expect(row(report, 'sdk')).toMatchObject({ checked: 1, consistent: 1 });
    expect(report.timeToConsistencyMs.sdk).toMatchObject({ count: 0, skippedLate: 1, neverConsistent: 0 });
    expect(await counted(metrics.timeToConsistencySkipped, { writer: 'sdk' })).toBe(1);
    expect(report.arrivalLagMs.count).toBe(1);
    expect(report.arrivalLagMs.p50).toBeGreaterThanOrEqual(2_000);
    expect(report.arrivalLagMs.p99).toBe(report.arrivalLagMs.p50);
  });

  it("fed after the purges (embedded mode's tap), times the system: a late offer is the purge path's delay, sampled", async () => {
    const metrics = createInspectMetrics(createMetricsRegistry());
    const o = observer({ timescalesMs: [5_000] }, undefined, metrics, 'after-purge');
    o.offer([seenLate(change('items', 'u', 44, 5), 2_000)]);
    const report = await settle(o, 1, 20_000);
    expect(report.timeToConsistencyMs.sdk).toMatchObject({ count: 1, skippedLate: 0 });
    expect(report.timeToConsistencyMs.sdk.p50).toBeGreaterThanOrEqual(2_000);
    expect(report.arrivalLagMs.count).toBe(0);
  });
});

describe('sampling and the bound', () => {
  it('checks the sampled fraction only', async () => {
    let draw = 0;
    const o = observer({ sampleRate: 0.5 }, () => (draw++ % 2 === 0 ? 0.1 : 0.9));
    o.offer(Array.from({ length: 20 }, (_, i) => change('items', 'u', 100 + i, 1)));
    const report = await settle(o, 10);
    expect(report).toMatchObject({ changesSeen: 20, changesSampled: 10, dropped: 0 });
    expect(row(report, 'sdk')?.checked).toBe(10);
  });

  it('drops (and counts) samples beyond maxPendingChecks instead of growing', async () => {
    // One key and one timescale: two scheduled tasks per change, so four fit.
    const o = observer({ maxPendingChecks: 4, timescalesMs: [1_000] });
    o.offer(Array.from({ length: 5 }, (_, i) => change('items', 'u', 200 + i, 1)));
    const report = await settle(o, 2);
    expect(report).toMatchObject({ changesSampled: 5, dropped: 3 });
    expect(row(report, 'sdk')?.checked).toBe(2);
  });

  it('a poll whose read fails ends the polls of its key (no read storm behind an outage); its check still runs', async () => {
    const { redis: stuck, close } = await frozenRedis();
    const metrics = createInspectMetrics(createMetricsRegistry());
    // The timescale (5 s) leaves room for two more polls after the first one's 2 s read deadline.
    const o = new Observer({
      config,
      inspect: InspectConfig.parse({ sampleRate: 1, timescalesMs: [5_000] }),
      redis: stuck,
      pool,
      metrics,
      logger: createLogger({ level: 'silent' }),
    });
    observers.push(o);
    const redisErrors = async (): Promise<number> =>
      (await metrics.errors.get()).values.find((v) => v.labels['target'] === 'redis')?.value ?? 0;
    try {
      o.offer([change('items', 'u', 310, 1)]);
      await waitFor(
        'the check at 5 s to fail too',
        async () => (o.report().unchecked['entry-read-failed'] ?? 0) === 1,
        {
          timeoutMs: 20_000,
        },
      );
      // One failed poll and one failed check: no poll after the first failure.
      expect(await redisErrors()).toBe(2);
      expect((await metrics.pending.get()).values[0]?.value).toBe(0);
    } finally {
      await o.stop();
      close();
    }
  });

  it('counts running checks against the bound and times out reads on a frozen Redis link', async () => {
    const { redis: stuck, close } = await frozenRedis();
    const registry = createMetricsRegistry();
    const metrics = createInspectMetrics(registry);
    const o = new Observer({
      config,
      // One key, one timescale: two slots per change.
      inspect: InspectConfig.parse({ sampleRate: 1, timescalesMs: [100], maxPendingChecks: 4 }),
      redis: stuck,
      pool,
      metrics,
      logger: createLogger({ level: 'silent' }),
    });
    observers.push(o);
    try {
      o.offer([change('items', 'u', 300, 1)]);
      // Both of its tasks fired and hang on the frozen link: they still hold their two slots.
      await waitFor('two running checks', async () => (await metrics.pending.get()).values[0]?.value === 2);
      o.offer([change('items', 'u', 301, 1), change('items', 'u', 302, 1)]);
      await waitFor('the admissions', async () => o.report().changesSampled === 3);
      expect(o.report().dropped).toBe(1);
      // The hung reads fail at their deadline (counted), freeing the slots; nothing is left running.
      await waitFor(
        'the reads to time out',
        async () => {
          const errors = (await metrics.errors.get()).values.find((v) => v.labels['target'] === 'redis');
          return (errors?.value ?? 0) >= 4 && (await metrics.pending.get()).values[0]?.value === 0;
        },
        { timeoutMs: 20_000 },
      );
      // Two timescale checks were due (changes 300 and 301; 302 was dropped): neither could be made,
      // and both are shown as unverifiable for that reason, not left out of the report.
      expect(row(o.report(), 'sdk')).toMatchObject({
        checked: 2,
        unverifiable: 2,
        consistent: 0,
        inconsistent: 0,
      });
      expect(o.report().unchecked['entry-read-failed']).toBe(2);
    } finally {
      await o.stop();
      close();
    }
  });
});
