import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createLogger } from '@walpurge/core';
import { uniqueName, waitFor } from '@walpurge/testing';
import { createCacheClient, type CacheClient } from './cache-client.js';
import { ENTRY_FIELDS } from './entry-layout.js';
import type { CacheClientOptions } from './options.js';

const { version: VER, filledAt: FT, loadStartedAt: LS, leaseTakenAt: LT } = ENTRY_FIELDS;

interface Row {
  id: number;
  rev: number;
}

async function fillsWithoutVersion(client: CacheClient, reason: string): Promise<number> {
  const { values } = await client.metrics.fillsWithoutVersion.get();
  return values.find((v) => v.labels['reason'] === reason)?.value ?? 0;
}

/**
 * The row version the SDK stores beside each value (`GetOptions.version`), and the fill and load
 * times that let the consistency observer tell a purge that never happened from a stale fill.
 */
describe('row versions in cache entries', () => {
  const { redisUrl } = inject('services');
  let admin: Redis;
  const clients: CacheClient[] = [];
  const connections: Redis[] = [];

  beforeAll(async () => {
    admin = new Redis(redisUrl);
    await admin.ping();
  });
  afterAll(async () => {
    await Promise.all(clients.map((client) => client.close()));
    for (const redis of connections) redis.disconnect();
    admin.disconnect();
  });

  async function newClient(prefix: string, options: Partial<CacheClientOptions> = {}): Promise<CacheClient> {
    const redis = new Redis(redisUrl);
    connections.push(redis);
    await redis.ping();
    const client = createCacheClient({ redis, keyPrefix: prefix, earlyRefreshBeta: 0, ...options });
    clients.push(client);
    await client.ready();
    return client;
  }

  /** Redis' own clock, epoch ms: the clock ft and ls are taken from. */
  async function redisNow(): Promise<number> {
    const [seconds, micros] = await admin.time();
    return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
  }

  async function entry(key: string) {
    const [ver, ft, ls, lt] = await admin.hmget(key, VER, FT, LS, LT);
    return { ver, ft: ft === null ? null : Number(ft), ls: ls === null ? null : Number(ls), lt };
  }

  it('a get stores the version, the fill time and the lease time (ls <= load <= ft), and no lease fields', async () => {
    const prefix = `${uniqueName('rowver_get')}:`;
    const client = await newClient(prefix);
    const before = await redisNow();
    let duringLoad = 0;
    const row = await client.get<Row>(
      'item:1',
      async () => {
        duringLoad = await redisNow();
        return { id: 1, rev: 7 };
      },
      { ttl: 60, version: (value) => value.rev },
    );
    const after = await redisNow();
    expect(row).toEqual({ id: 1, rev: 7 });
    const stored = await entry(`${prefix}item:1`);
    expect(stored.ver).toBe('7');
    expect(stored.lt).toBeNull(); // the lease time moved to ls with the fill
    // The load started when the lease was taken, before the loader ran; the fill came after it.
    expect(stored.ls).toBeGreaterThanOrEqual(before);
    expect(stored.ls).toBeLessThanOrEqual(duringLoad);
    expect(stored.ft).toBeGreaterThanOrEqual(duringLoad);
    expect(stored.ft).toBeLessThanOrEqual(after);
    expect(await fillsWithoutVersion(client, 'none')).toBe(0);
  });

  it('stores Date, bigint, number and string versions normalized', async () => {
    const prefix = `${uniqueName('rowver_norm')}:`;
    const client = await newClient(prefix);
    const cases: Array<{ key: string; version: Date | bigint | number | string; stored: string }> = [
      {
        key: 'date',
        version: new Date(Date.UTC(2026, 11, 6, 2, 50, 0, 123)),
        stored: '2026-12-06T02:50:00.123Z',
      },
      { key: 'bigint', version: 2n ** 62n + 1n, stored: '4611686018427387905' },
      { key: 'number', version: 1_700_000_000_123, stored: '1700000000123' },
      { key: 'negative', version: -5, stored: '-5' },
      // PostgreSQL's text form, microseconds kept: what `SELECT updated_at::text` returns.
      { key: 'text', version: '2026-12-06 02:50:00.123456+00', stored: '2026-12-06 02:50:00.123456+00' },
    ];
    for (const { key, version } of cases) {
      await client.get(key, async () => ({ key }), { ttl: 60, version: () => version });
    }
    for (const { key, stored } of cases) expect((await entry(prefix + key)).ver).toBe(stored);
  });

  it('a refill without a version drops the older fill version; a refill with one replaces it', async () => {
    const prefix = `${uniqueName('rowver_refill')}:`;
    const client = await newClient(prefix);
    const key = `${prefix}item:2`;
    let rev = 1;
    const load = async (): Promise<Row> => ({ id: 2, rev });
    await client.get('item:2', load, { ttl: 60, staleWhileRevalidate: 60, version: (value) => value.rev });
    const first = await entry(key);
    expect(first.ver).toBe('1');

    // Soft-expire it: the next read serves it stale and refreshes it in the background.
    rev = 2;
    await admin.hset(key, ENTRY_FIELDS.softExpiry, '0');
    expect(await client.get('item:2', load, { ttl: 60, staleWhileRevalidate: 60 })).toEqual({
      id: 2,
      rev: 1,
    });
    await waitFor('the stale refresh to store the value', async () => (await entry(key)).ft !== first.ft);
    const refilled = await entry(key);
    expect(refilled.ver).toBeNull();
    expect(refilled.ls).toBeGreaterThanOrEqual(first.ft ?? Infinity); // the refresh lease came after the first fill
    expect(refilled.ls).toBeLessThanOrEqual(refilled.ft ?? -Infinity);

    rev = 3;
    await admin.hset(key, ENTRY_FIELDS.softExpiry, '0');
    await client.get('item:2', load, { ttl: 60, staleWhileRevalidate: 60, version: (value) => value.rev });
    await waitFor('the refresh with a version', async () => (await entry(key)).ver === '3');
  });

  it('a version function that throws or returns something unusable: the value is cached without a version and counted', async () => {
    const prefix = `${uniqueName('rowver_broken')}:`;
    const logged: string[] = [];
    const logger = createLogger({
      level: 'warn',
      destination: { write: (line: string) => logged.push(line) },
    });
    const client = await newClient(prefix, { logger });
    const versions: Array<{ key: string; version: () => number | null; reason: string }> = [
      {
        key: 'threw',
        version: () => {
          throw new Error('no such column');
        },
        reason: 'threw',
      },
      { key: 'nan', version: () => Number.NaN, reason: 'invalid' },
      { key: 'lossy', version: () => 2 ** 60, reason: 'invalid' }, // past 2^53: digits already lost
      { key: 'none', version: () => null, reason: 'none' },
    ];
    for (const { key, version } of versions) {
      let calls = 0;
      const loader = async () => ((calls += 1), `value of ${key}`);
      expect(await client.get(key, loader, { ttl: 60, version })).toBe(`value of ${key}`);
      expect(await client.get(key, loader, { ttl: 60, version })).toBe(`value of ${key}`);
      expect(calls).toBe(1); // cached: the second read was a hit
      const stored = await entry(prefix + key);
      expect(stored.ver).toBeNull();
      expect(stored.ft).not.toBeNull();
    }
    // Logged, at most once per 10 s (the metric counts every one): the first, the throw, is it.
    expect(logged).toHaveLength(1);
    expect(JSON.parse(logged[0] ?? '{}')).toMatchObject({
      level: 40,
      key: 'threw',
      reason: 'threw',
      msg: 'GetOptions.version threw: the value is cached without a version (no such column)',
    });
    expect(await fillsWithoutVersion(client, 'threw')).toBe(1);
    expect(await fillsWithoutVersion(client, 'invalid')).toBe(2);
    expect(await fillsWithoutVersion(client, 'none')).toBe(1);
  });

  it('warm() stores the version of each entry it loads', async () => {
    const prefix = `${uniqueName('rowver_warm')}:`;
    const client = await newClient(prefix);
    const report = await client.warm([
      {
        key: 'a',
        loader: async (): Promise<Row> => ({ id: 1, rev: 11 }),
        ttl: 60,
        version: (row: Row) => row.rev,
      },
      { key: 'b', loader: async () => 'unversioned', ttl: 60 },
    ]);
    expect(report.loaded).toBe(2);
    const a = await entry(`${prefix}a`);
    expect(a.ver).toBe('11');
    expect(a.ls).toBeLessThanOrEqual(a.ft ?? -Infinity);
    const b = await entry(`${prefix}b`);
    expect(b.ver).toBeNull();
    expect(b.ls).toBeLessThanOrEqual(b.ft ?? -Infinity);
  });

  it("refresh-on-invalidate's background reload stores the new row's version", async () => {
    const prefix = `${uniqueName('rowver_hot')}:`;
    const client = await newClient(prefix, { l1: true });
    let rev = 1;
    const options = { ttl: 600, refresh: 'on-invalidate', version: (row: Row) => row.rev } as const;
    await client.get('hot', async (): Promise<Row> => ({ id: 1, rev }), options);
    expect((await entry(`${prefix}hot`)).ver).toBe('1');
    rev = 2;
    const purgedAt = await redisNow();
    await admin.unlink(`${prefix}hot`); // as the invalidator purges
    await waitFor('the background reload', async () => (await entry(`${prefix}hot`)).ver === '2', {
      timeoutMs: 20_000,
      intervalMs: 20,
    });
    const reloaded = await entry(`${prefix}hot`);
    expect(reloaded.ls).toBeGreaterThanOrEqual(purgedAt);
    expect(reloaded.ls).toBeLessThanOrEqual(reloaded.ft ?? -Infinity);
  });

  it("XFetch's early refresh stores the new row's version and its own lease time", async () => {
    const prefix = `${uniqueName('rowver_xfetch')}:`;
    // A loader that "takes" 10 s of the client's clock, and a roll of −ln(1e-9) ≈ 20.7: XFetch
    // refreshes a hit with ~60 s left (10 s · 20.7 ≥ 60 s) at once, without waiting for anything.
    let clock = Date.now();
    const client = await newClient(prefix, {
      earlyRefreshBeta: 1,
      ttlJitter: 0,
      now: () => clock,
      random: () => 1 - 1e-9,
    });
    let rev = 1;
    const loader = async (): Promise<Row> => {
      clock += 10_000;
      return { id: 1, rev };
    };
    const options = { ttl: 60, version: (row: Row) => row.rev };
    await client.get('k', loader, options);
    const first = await entry(`${prefix}k`);
    expect(first.ver).toBe('1');
    rev = 2;
    expect(await client.get('k', loader, options)).toEqual({ id: 1, rev: 1 }); // a hit, refreshed behind it
    await waitFor('the early refresh', async () => (await entry(`${prefix}k`)).ver === '2');
    expect(await client.metrics.earlyRefreshes.get()).toMatchObject({ values: [{ value: 1 }] });
    const refreshed = await entry(`${prefix}k`);
    expect(refreshed.ls).toBeGreaterThanOrEqual(first.ft ?? Infinity);
    expect(refreshed.ls).toBeLessThanOrEqual(refreshed.ft ?? -Infinity);
  });

  it('a lease given back (the loader threw) leaves no lease time behind', async () => {
    const prefix = `${uniqueName('rowver_release')}:`;
    const client = await newClient(prefix);
    await client.get('k', async () => 'v1', { ttl: 60, staleWhileRevalidate: 60, version: () => 1 });
    await admin.hset(`${prefix}k`, ENTRY_FIELDS.softExpiry, '0');
    // The stale read takes the refresh lease; its background loader fails and gives it back.
    let failed = false;
    await client.get(
      'k',
      async (): Promise<string> => {
        failed = true;
        throw new Error('database down');
      },
      { ttl: 60, staleWhileRevalidate: 60 },
    );
    await waitFor('the failed refresh to give its lease back', async () => {
      return failed && (await admin.hget(`${prefix}k`, 'lease')) === null;
    });
    const kept = await entry(`${prefix}k`);
    expect(kept).toMatchObject({ ver: '1', lt: null });
  });
});
