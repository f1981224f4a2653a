import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createIsolatedDatabase, endPool, uniqueName, type IsolatedDatabase } from '@walpurge/testing';
import { createCacheClient } from './cache-client.js';
import { PayloadCodec, jsonSerializer } from './serializer.js';

/**
 * The stale-set race: a reader loads row R (old value), a writer commits a new value and the
 * pipeline purges R's key, THEN the reader stores what it loaded. Without leases the old value stays
 * until TTL. Writers here purge exactly like the invalidator (plain UNLINK, after the commit, after a
 * small random delay); loaders sleep between reading and returning to widen the window.
 */
const ROWS = 12;
const READERS = 16;
const WRITERS = 4;
const RUN_MS = 3_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const randomInt = (below: number) => Math.floor(Math.random() * below);

describe('cache-aside race against a live Postgres table', () => {
  const { databaseUrl, redisUrl } = inject('services');
  let db: IsolatedDatabase;
  let pool: pg.Pool;
  let redis: Redis;
  let purger: Redis;

  beforeAll(async () => {
    db = await createIsolatedDatabase(databaseUrl, 'client_race');
    pool = new pg.Pool({ connectionString: db.url, max: READERS + WRITERS + 2 });
    await pool.query('CREATE TABLE items (id int PRIMARY KEY, value int NOT NULL)');
    await pool.query('INSERT INTO items SELECT g, 0 FROM generate_series(1, $1) g', [ROWS]);
    redis = new Redis(redisUrl);
    purger = new Redis(redisUrl);
    await Promise.all([redis.ping(), purger.ping()]);
  });

  afterAll(async () => {
    if (pool) await endPool(pool);
    redis?.disconnect();
    purger?.disconnect();
    await db?.drop();
  });

  async function loadRow(id: number): Promise<number> {
    const { rows } = await pool.query<{ value: number }>('SELECT value FROM items WHERE id = $1', [id]);
    await sleep(randomInt(20)); // the reader is slow to store what it read: the race window
    return rows[0]!.value;
  }

  /** Runs readers and writers for RUN_MS, then waits for every purge to land. */
  async function runWorkload(prefix: string, read: (id: number) => Promise<number>): Promise<void> {
    const stopAt = Date.now() + RUN_MS;
    const purges = new Set<Promise<unknown>>();
    const readers = Array.from({ length: READERS }, async () => {
      while (Date.now() < stopAt) await read(1 + randomInt(ROWS));
    });
    const writers = Array.from({ length: WRITERS }, async () => {
      while (Date.now() < stopAt) {
        const id = 1 + randomInt(ROWS);
        await pool.query('UPDATE items SET value = value + 1 WHERE id = $1', [id]); // autocommit
        const purge = sleep(randomInt(4)).then(() => purger.unlink(`${prefix}item:${id}`));
        purges.add(purge);
        void purge.finally(() => purges.delete(purge));
        await sleep(randomInt(10));
      }
    });
    await Promise.all([...readers, ...writers]);
    await Promise.all([...purges]);
  }

  /** Compares every cached row with the database; returns [checked, stale]. */
  async function check(
    readCached: (id: number) => Promise<number | undefined>,
  ): Promise<{ checked: number; stale: number }> {
    const { rows } = await pool.query<{ id: number; value: number }>('SELECT id, value FROM items');
    let checked = 0;
    let stale = 0;
    for (const row of rows) {
      const cached = await readCached(row.id);
      if (cached === undefined) continue;
      checked += 1;
      if (cached !== row.value) stale += 1;
    }
    return { checked, stale };
  }

  it('plain cache-aside (GET / load / SET) leaves stale entries: the checker catches them', async () => {
    const prefix = `${uniqueName('plain')}:`;
    await runWorkload(prefix, async (id) => {
      const key = `${prefix}item:${id}`;
      const hit = await redis.get(key);
      if (hit !== null) return Number(hit);
      const value = await loadRow(id);
      await redis.set(key, String(value), 'EX', 60);
      return value;
    });
    const result = await check(async (id) => {
      const raw = await redis.get(`${prefix}item:${id}`);
      return raw === null ? undefined : Number(raw);
    });
    expect(result.checked).toBeGreaterThan(0);
    expect(result.stale).toBeGreaterThan(0);
  });

  it('with leases the same workload leaves zero stale keys', async () => {
    const prefix = `${uniqueName('leased')}:`;
    const client = createCacheClient({ redis, keyPrefix: prefix, coalesce: false, earlyRefreshBeta: 0 });
    await runWorkload(prefix, (id) => client.get(`item:${id}`, () => loadRow(id), { ttl: 60 }));
    await client.close();

    const codec = new PayloadCodec(jsonSerializer);
    const result = await check(async (id) => {
      const payload = await redis.hgetBuffer(`${prefix}item:${id}`, 'v');
      return payload === null ? undefined : ((await codec.decode(payload)) as number);
    });
    const rejections = (await client.metrics.fillRejections.get()).values[0]?.value ?? 0;
    expect(result.checked).toBeGreaterThan(0);
    // The races did happen (fills were refused), and none of them left a stale entry.
    expect(rejections).toBeGreaterThan(0);
    expect(result.stale).toBe(0);
  });
});
