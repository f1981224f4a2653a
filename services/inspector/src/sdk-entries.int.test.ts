import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { ENTRY_FIELDS, createCacheClient, type CacheClient } from '@walpurge/client';
import { InspectConfig, WalpurgeConfig } from '@walpurge/config';
import { createLogger, createMetricsRegistry } from '@walpurge/core';
import type { ChangeEvent } from '@walpurge/protocol';
import { createIsolatedDatabase, uniqueName, waitFor, type IsolatedDatabase } from '@walpurge/testing';
import { createRowPool } from './check/row-pool.js';
import { createInspectMetrics } from './metrics.js';
import { Observer } from './observer.js';

/**
 * The real SDK's entries, read by the observer: @walpurge/client stores the row's version (ver) and
 * its fill time (ft) where the observer looks for them, so an entry loaded from the committed row is
 * consistent, and one left from an older row (no invalidator runs here) is confirmed stale.
 */
const services = inject('services');
const prefix = `${uniqueName('inspect_sdk')}:`;
let database: IsolatedDatabase;
let db: pg.Client;
let redis: Redis;
let pool: pg.Pool;
let client: CacheClient;
let observer: Observer;

interface Item {
  id: number;
  ver: string;
  updated: string;
}

const config = WalpurgeConfig.parse({
  redis: { url: services.redisUrl, keyPrefix: prefix },
  rules: [
    { name: 'counter', table: 'public.items', version: 'ver', redis: { keys: ['item:{id}'] } },
    { name: 'timestamp', table: 'public.items', version: 'updated', redis: { keys: ['when:{id}'] } },
  ],
});

const load = async (id: number): Promise<Item> => {
  const { rows } = await db.query<Item>(
    `SELECT id, ver::text AS ver, to_char(updated AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS updated FROM items WHERE id = $1`,
    [id],
  );
  return rows[0] as Item;
};

function change(row: Item): ChangeEvent {
  return {
    v: 1,
    op: 'u',
    source: {
      db: database.name,
      schema: 'public',
      table: 'items',
      lsn: '0/100',
      xid: 1,
      commitTs: new Date().toISOString(),
      origin: null,
    },
    key: { id: row.id },
    before: null,
    after: { ...row },
    unchanged: [],
  };
}

beforeAll(async () => {
  database = await createIsolatedDatabase(services.databaseUrl, 'inspect_sdk');
  db = new pg.Client({ connectionString: database.url });
  await db.connect();
  await db.query(
    'CREATE TABLE items (id int PRIMARY KEY, ver bigint NOT NULL, updated timestamptz NOT NULL)',
  );
  await db.query("INSERT INTO items VALUES (1, 1, '2026-12-06 01:00:00.123456+00'), (2, 1, now())");
  redis = new Redis(services.redisUrl);
  pool = createRowPool({ url: database.url });
  client = createCacheClient({ redis: services.redisUrl, keyPrefix: prefix, earlyRefreshBeta: 0 });
  observer = new Observer({
    config,
    inspect: InspectConfig.parse({ sampleRate: 1, timescalesMs: [150] }),
    redis,
    pool,
    metrics: createInspectMetrics(createMetricsRegistry()),
    logger: createLogger({ level: 'silent' }),
  });
});

afterAll(async () => {
  await observer?.stop();
  await client?.close();
  await pool?.end();
  await db?.end();
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.unlink(...keys);
  redis.disconnect();
  await database?.drop();
});

it('reads the versions and fill times the SDK stores: counter and timestamp (ms vs µs) consistent, an older entry confirmed stale', async () => {
  // Both entries of row 1 hold its current version; the timestamp one as a JS Date (milliseconds).
  // Row 2 is cached, then updated with nothing purging its entries. A read before the client's
  // connection is up may fail open (load without storing): read until the three entries are stored.
  await waitFor('the SDK to store the three entries', async () => {
    await client.get('item:1', () => load(1), { ttl: 300, version: (row) => row.ver });
    await client.get('when:1', () => load(1), { ttl: 300, version: (row) => new Date(row.updated) });
    await client.get('item:2', () => load(2), { ttl: 300, version: (row) => row.ver });
    const stored = await Promise.all(
      ['item:1', 'when:1', 'item:2'].map((key) => redis.hget(prefix + key, ENTRY_FIELDS.version)),
    );
    return stored.every((version) => version !== null);
  });
  await db.query('UPDATE items SET ver = 2 WHERE id = 2');
  observer.offer([change(await load(1)), change(await load(2))]);
  const report = await waitFor('four checks', async () => {
    const r = observer.report();
    return r.checks.reduce((sum, row) => sum + row.checked, 0) >= 4 && r;
  });
  const sdk = report.checks.find((row) => row.writer === 'sdk');
  // item:1 and when:1 consistent; item:2 stale (ver 1 < 2); when:2 absent (never cached).
  expect(sdk).toMatchObject({ checked: 4, consistent: 3, inconsistent: 1, unverifiable: 0 });
  expect(report.inconsistencies).toEqual([
    expect.objectContaining({
      key: `${prefix}item:2`,
      entryVersion: '1',
      rowVersion: '2',
      cause: 'purge-missing',
    }),
  ]);
});
