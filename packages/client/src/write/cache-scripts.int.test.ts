import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { uniqueName } from '@walpurge/testing';
import { createCacheClient } from '../read/cache-client.js';
import { ENTRY_FIELDS } from '../read/entry-layout.js';
import { CacheWriter } from './cache-writer.js';
import {
  CACHE_PURGE_REFUSED_SCRIPT,
  ECHO_PURGE_SCRIPT,
  LuaScript,
  REFUSED_MARKER_TTL_MS,
} from '@walpurge/write-behind';

/**
 * The cache side of the write paths: version-guarded puts and tombstones, and the echo purge the
 * invalidator runs for the flusher's own commits (keeps what the write put, drops everything else).
 */
const echoPurge = new LuaScript(ECHO_PURGE_SCRIPT);
const purgeRefused = new LuaScript(CACHE_PURGE_REFUSED_SCRIPT);

describe('write-side cache scripts on real Redis', () => {
  const { redisUrl } = inject('services');
  let redis: Redis;

  beforeAll(async () => {
    redis = new Redis(redisUrl);
    await redis.ping();
  });
  afterAll(() => redis.disconnect());

  function setup() {
    const prefix = `${uniqueName('wcache')}:`;
    const writer = new CacheWriter({ redis, keyPrefix: prefix, ttlMs: 60_000 });
    const purge = async (keys: string[], version: number) =>
      Number(
        await echoPurge.run(
          redis,
          keys.map((key) => prefix + key),
          [String(version)],
        ),
      );
    const value = async (key: string) => {
      const raw = await redis.hgetBuffer(prefix + key, 'v');
      return raw ? (JSON.parse(raw.subarray(1).toString()) as unknown) : undefined;
    };
    return { prefix, writer, purge, value };
  }

  it('an older put never replaces a newer value or a newer delete tombstone', async () => {
    const { writer, value } = setup();
    expect(await writer.set(['a', 'b'], 'v20', '20')).toBe(2);
    expect(await writer.set(['a', 'b'], 'v10', '10')).toBe(0);
    expect(await value('a')).toBe('v20');
    expect(await writer.delete(['a'], '30')).toBe(1);
    expect(await value('a')).toBeUndefined();
    expect(await writer.set(['a'], 'v25', '25')).toBe(0); // a late write cannot resurrect it
    expect(await value('a')).toBeUndefined();
    expect(await writer.set(['a'], 'v31', '31')).toBe(1);
    expect(await value('a')).toBe('v31');
  });

  it('echo purge keeps entries holding the committed version or newer, and drops all others', async () => {
    const { prefix, writer, purge, value } = setup();
    await writer.set(['same'], 'v5', '5'); // what the write-behind put: read-your-writes
    await writer.set(['newer'], 'v9', '9'); // a newer write already landed in the cache
    await writer.set(['older'], 'v3', '3'); // an older write: stale once v5 commits
    await redis.hset(`${prefix}plain`, 'v', Buffer.from('\u0000"filled"'), 'e', Date.now() + 60_000, 'd', 0);
    expect(await purge(['same', 'newer', 'older', 'plain', 'absent'], 5)).toBe(2);
    expect(await value('same')).toBe('v5');
    expect(await value('newer')).toBe('v9');
    expect(await redis.exists(`${prefix}older`, `${prefix}plain`)).toBe(0);
  });

  it('a value a reader filled over a delete tombstone is purged by the echo, whatever its version', async () => {
    const { prefix, writer, purge } = setup();
    const reader = createCacheClient({ redis, keyPrefix: prefix, earlyRefreshBeta: 0 });
    await writer.delete(['row'], '7');
    // The delete is not flushed yet, so the loader still finds the row in the database.
    expect(await reader.get('row', async () => 'still in the database', { ttl: 60 })).toBe(
      'still in the database',
    );
    expect(await redis.hmget(`${prefix}row`, 'wv', 'rf')).toEqual(['7', '1']);
    expect(await purge(['row'], 7)).toBe(1); // the flushed delete's echo removes the refilled row
    expect(await redis.exists(`${prefix}row`)).toBe(0);
    await reader.close();
  });

  it("a write-side put replaces a reader's fill whole: no fill version or load time stays beside the written value", async () => {
    const { prefix, writer, value } = setup();
    const reader = createCacheClient({ redis, keyPrefix: prefix, earlyRefreshBeta: 0 });
    await reader.get('row', async () => ({ rev: 3 }), { ttl: 60, version: (row) => row.rev });
    const filled = await redis.hmget(prefix + 'row', ENTRY_FIELDS.version, ENTRY_FIELDS.filledAt);
    expect(filled[0]).toBe('3');
    expect(await writer.set(['row'], { rev: 4 }, '900')).toBe(1);
    expect(await value('row')).toEqual({ rev: 4 });
    const written = await redis.hgetall(prefix + 'row');
    expect(written).not.toHaveProperty(ENTRY_FIELDS.version);
    expect(written).not.toHaveProperty(ENTRY_FIELDS.loadStartedAt);
    expect(written[ENTRY_FIELDS.writeVersion]).toBe('900');
    // ft: when the written value was stored, no earlier than the fill it replaced.
    expect(Number(written[ENTRY_FIELDS.filledAt])).toBeGreaterThanOrEqual(Number(filled[1]));
    // A delete tombstone holds no value, so no fill time either.
    expect(await writer.delete(['row'], '901')).toBe(1);
    expect(await redis.hgetall(prefix + 'row')).toEqual({ [ENTRY_FIELDS.writeVersion]: '901' });
    await reader.close();
  });

  it("the flusher's purge of a refused value leaves a marker, so the refused write's own late cache put cannot land", async () => {
    const { prefix, writer, value } = setup();
    const refuse = async (keys: string[], version: string) =>
      Number(
        await purgeRefused.run(
          redis,
          keys.map((key) => prefix + key),
          [version, String(REFUSED_MARKER_TTL_MS)],
        ),
      );
    await writer.set(['cached'], 'refused', '500'); // cached on accept, then refused by PostgreSQL
    await writer.set(['newer'], 'accepted later', '900');
    await redis.hset(`${prefix}filled`, 'v', 'from the database', 'e', '0', 'd', '0');
    // 'missing': the refusal comes before the accepting client's cache write (accept → queue → cache).
    expect(await refuse(['cached', 'newer', 'filled', 'missing'], '500')).toBe(2);
    expect(await value('cached')).toBeUndefined();
    expect(await value('newer')).toBe('accepted later');
    expect(await redis.hget(`${prefix}filled`, 'v')).toBe('from the database');
    for (const key of ['cached', 'missing']) {
      expect(await redis.hgetall(prefix + key)).toEqual({ wv: '500' });
      expect(await redis.pttl(prefix + key)).toBeGreaterThan(0);
    }
    // The refused write's cache put arrives late: it must fail the version guard everywhere.
    expect(await writer.set(['cached', 'missing', 'filled'], 'refused', '500')).toBe(0);
    for (const key of ['cached', 'missing']) expect(await value(key)).toBeUndefined();
    expect(await redis.hget(`${prefix}filled`, 'v')).toBe('from the database');
    // A newer accepted write still lands.
    expect(await writer.set(['missing'], 'next', '501')).toBe(1);
    expect(await value('missing')).toBe('next');
  });
});
