import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { WalpurgeConfig } from '@walpurge/config';
import { createMetricsRegistry, isRetriable } from '@walpurge/core';
import type { ChangeEvent } from '@walpurge/protocol';
import { uniqueName } from '@walpurge/testing';
import { ECHO_PURGE_REPORT_SCRIPT, ECHO_PURGE_SCRIPT, emptyTargets } from '@walpurge/rules';
import { changeEvent, deleteKeys, logger, metricValue } from '../../../test/harness.js';
import { createInvalidator } from '../../create-invalidator.js';
import { RedisPurger } from './redis-purger.js';

const services = inject('services');
let redis: Redis;
const prefixes: string[] = [];

beforeAll(async () => {
  redis = new Redis(services.redisUrl);
  await redis.ping();
});
afterAll(async () => {
  for (const prefix of prefixes) await deleteKeys(redis, prefix);
  redis?.disconnect();
});

function newPrefix(label: string): string {
  const prefix = `${uniqueName(label)}:`;
  prefixes.push(prefix);
  return prefix;
}

/** The echo purge on real Redis, over every kind of value a row's key may hold. */
describe('ECHO_PURGE_SCRIPT', () => {
  it('keeps entries holding the committed version or newer; purges older, unversioned, refilled and non-hash values', async () => {
    const p = newPrefix('echo_script');
    await redis.hset(`${p}same`, 'v', 'x', 'wv', '500');
    await redis.hset(`${p}newer`, 'v', 'x', 'wv', '900');
    await redis.hset(`${p}older`, 'v', 'x', 'wv', '300');
    await redis.hset(`${p}unversioned`, 'v', 'x', 'e', '1');
    await redis.hset(`${p}refilled`, 'v', 'x', 'wv', '500', 'rf', '1');
    await redis.set(`${p}string`, 'an application value');
    await redis.sadd(`${p}set`, 'a');
    const keys = ['same', 'newer', 'older', 'unversioned', 'refilled', 'string', 'set', 'absent'];
    const purged = await redis.eval(ECHO_PURGE_SCRIPT, keys.length, ...keys.map((k) => p + k), '500');
    expect(purged).toBe(5);
    const left = await Promise.all(keys.map(async (k) => [k, await redis.exists(p + k)] as const));
    expect(left.filter(([, n]) => n === 1).map(([k]) => k)).toEqual(['same', 'newer']);
  });

  it('a version field that is not a decimal integer vouches for nothing: purged, never kept forever', async () => {
    const p = newPrefix('echo_garbage');
    // Lua's tonumber reads all of these as numbers ≥ 500 (nan compares false both ways): each would
    // have kept a stale entry through every later echo of its row.
    const garbage = ['nan', 'inf', '1e999', '0x999', '900.5', ' 900', '900 ', '+900', ''];
    for (const [i, wv] of garbage.entries()) await redis.hset(`${p}g${i}`, 'v', 'x', 'wv', wv);
    const keys = garbage.map((_, i) => `${p}g${i}`);
    expect(await redis.eval(ECHO_PURGE_SCRIPT, keys.length, ...keys, '500')).toBe(garbage.length);
    expect(await redis.exists(...keys)).toBe(0);
  });

  it('compares versions exactly beyond 2^53, and ignores leading zeros', async () => {
    const p = newPrefix('echo_exact');
    // 2^53 and 2^53 + 1 are the same double: a float comparison would keep the older entry.
    await redis.hset(`${p}older`, 'v', 'x', 'wv', '9007199254740992');
    await redis.hset(`${p}same`, 'v', 'x', 'wv', '009007199254740993');
    await redis.hset(`${p}newer`, 'v', 'x', 'wv', '10000000000000000');
    const keys = ['older', 'same', 'newer'].map((k) => p + k);
    expect(await redis.eval(ECHO_PURGE_SCRIPT, keys.length, ...keys, '9007199254740993')).toBe(1);
    expect(await redis.exists(`${p}older`)).toBe(0);
    expect(await redis.exists(`${p}same`, `${p}newer`)).toBe(2);
  });

  it('clears the lease of an entry it keeps, so a fill that read the database before the commit is rejected', async () => {
    const p = newPrefix('echo_lease');
    const future = String(Date.now() + 60_000);
    await redis.hset(`${p}kept`, 'v', 'mine', 'wv', '500', 'lease', 'reader', 'lx', future);
    await redis.hset(`${p}tombstone`, 'wv', '500', 'lease', 'reader', 'lx', future);
    const keys = ['kept', 'tombstone'].map((k) => p + k);
    expect(await redis.eval(ECHO_PURGE_SCRIPT, keys.length, ...keys, '500')).toBe(0);
    for (const key of keys) {
      expect(await redis.hmget(key, 'lease', 'lx')).toEqual([null, null]);
      expect(await redis.hget(key, 'wv')).toBe('500');
    }
    expect(await redis.hget(`${p}kept`, 'v')).toBe('mine');
  });

  it('ECHO_PURGE_REPORT_SCRIPT does the same and also says how many entries it kept', async () => {
    const p = newPrefix('echo_report');
    await redis.hset(`${p}same`, 'v', 'x', 'wv', '500');
    await redis.hset(`${p}older`, 'v', 'x', 'wv', '300');
    const keys = ['same', 'older', 'absent'].map((k) => p + k);
    expect(await redis.eval(ECHO_PURGE_REPORT_SCRIPT, keys.length, ...keys, '500')).toEqual([1, 1]);
    expect(await redis.exists(`${p}same`)).toBe(1);
    expect(await redis.exists(`${p}older`)).toBe(0);
  });
});

describe('echo purges through the Redis purger', () => {
  it('like the plain path: a tag key that is not a set is rejected for good after everything else is purged; row keys of any type are purged', async () => {
    const prefix = newPrefix('echo_purger');
    const purger = new RedisPurger(new Redis(services.redisUrl), {
      keyPrefix: prefix,
      batchSize: 10,
      scanCount: 100,
    });
    try {
      await redis.hset(`${prefix}kept`, 'v', 'x', 'wv', '500');
      await redis.set(`${prefix}string`, 'x');
      await redis.rpush(`${prefix}list`, 'x');
      await redis.zadd(`${prefix}zset`, 1, 'x');
      await redis.xadd(`${prefix}stream`, '*', 'f', 'x');
      await redis.set(`${prefix}plain`, 'x');
      await redis.set(`${prefix}tag:not-a-set`, 'an application value');
      await redis.sadd(`${prefix}tag:ok`, 'member');
      await redis.set(`${prefix}member`, 'x');
      await redis.set(`${prefix}pat:1`, 'x');
      const targets = emptyTargets();
      targets.redis.keys.push('plain');
      targets.redis.versioned = ['kept', 'string', 'list', 'zset', 'stream'].map((key) => ({
        key,
        version: '500',
      }));
      targets.redis.tags.push('not-a-set', 'ok');
      targets.redis.patterns.push('pat:*');
      const error = await purger.purge(targets, { signal: new AbortController().signal }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(Error);
      expect(isRetriable(error)).toBe(false);
      expect(String(error)).toContain(`${prefix}tag:not-a-set`);
      const gone = ['string', 'list', 'zset', 'stream', 'plain', 'tag:ok', 'member', 'pat:1'];
      expect(await redis.exists(...gone.map((k) => prefix + k))).toBe(0);
      expect(await redis.exists(`${prefix}kept`, `${prefix}tag:not-a-set`)).toBe(2);
    } finally {
      await purger.close();
    }
  });
});

describe('read-your-writes in monitoring', () => {
  const echo = (id: number, version: string): ChangeEvent => {
    const event = changeEvent('u', 'items', {
      key: { id },
      before: null,
      after: { id, _walpurge_version: version },
    });
    return { ...event, source: { ...event.source, origin: 'walpurge_write_behind' } };
  };

  it("counts the entries kept because they were the flusher's own echo (walpurge_invalidator_echo_kept_total)", async () => {
    const prefix = newPrefix('echo_metric');
    const registry = createMetricsRegistry({ defaultMetrics: false });
    const config = WalpurgeConfig.parse({
      redis: { url: services.redisUrl, keyPrefix: prefix },
      rules: [{ table: 'items', redis: { keys: ['item:{id}'] } }],
    });
    const invalidator = createInvalidator({ config, logger, registry, consume: 'none' });
    await invalidator.start(new AbortController().signal);
    try {
      await redis.hset(`${prefix}item:1`, 'v', 'mine', 'wv', '700'); // what the application just wrote
      await redis.hset(`${prefix}item:2`, 'v', 'refilled before the flush', 'wv', '100');
      await redis.hset(`${prefix}item:3`, 'v', 'mine', 'wv', '900');
      await invalidator.handle([echo(1, '700'), echo(2, '200'), echo(3, '900')]);
      expect(await redis.exists(`${prefix}item:1`, `${prefix}item:3`)).toBe(2);
      expect(await redis.exists(`${prefix}item:2`)).toBe(0);
      const kept = () => metricValue(registry, 'walpurge_invalidator_echo_kept_total', { target: 'redis' });
      expect(await kept()).toBe(2);
      // Echo keys count as purged keys too, kept or not.
      expect(
        await metricValue(registry, 'walpurge_invalidator_purges_total', {
          kind: 'keys',
          outcome: 'success',
        }),
      ).toBe(3);
      // The echo of a delete (REPLICA IDENTITY FULL: the old row carries the version it held, 500,
      // older than the delete's own 800) keeps deleteBehind's marker, so a late older write still
      // fails its version guard, but clears the lease a reader took on it: that reader may have
      // read the row before the delete committed, and its fill must not land. A write newer than
      // the delete stays; a value older than the deleted row's is purged, and so is the deleted
      // value itself (wv 500: the delete's marker never reached the cache).
      const leaseUntil = String(Date.now() + 60_000);
      await redis.hset(`${prefix}item:4`, 'wv', '800', 'lease', 'reader', 'lx', leaseUntil);
      await redis.hset(`${prefix}item:5`, 'v', 'written after the delete', 'wv', '900', 'lease', 'r2');
      await redis.hset(`${prefix}item:6`, 'v', 'refilled before the delete', 'wv', '300');
      await redis.hset(`${prefix}item:7`, 'v', 'the deleted row', 'wv', '500');
      const deletes = [4, 5, 6, 7].map((id) => {
        const deleted = changeEvent('d', 'items', {
          key: { id },
          before: { id, _walpurge_version: '500' },
          after: null,
        });
        return { ...deleted, source: { ...deleted.source, origin: 'walpurge_write_behind' } };
      });
      await invalidator.handle(deletes);
      expect(await redis.hgetall(`${prefix}item:4`)).toEqual({ wv: '800' });
      expect(await redis.hgetall(`${prefix}item:5`)).toEqual({ v: 'written after the delete', wv: '900' });
      expect(await redis.exists(`${prefix}item:6`)).toBe(0);
      expect(await redis.exists(`${prefix}item:7`)).toBe(0);
      expect(await kept()).toBe(4);
      // An event that is not an echo purges unconditionally and keeps nothing.
      await invalidator.handle([
        changeEvent('u', 'items', { key: { id: 3 }, before: null, after: { id: 3 } }),
      ]);
      expect(await redis.exists(`${prefix}item:3`)).toBe(0);
      expect(await kept()).toBe(4);
    } finally {
      await invalidator.stop();
    }
  });
});
