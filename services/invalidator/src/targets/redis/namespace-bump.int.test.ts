import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { isRetriable, WalpurgeError } from '@walpurge/core';
import {
  emptyTargets,
  NAMESPACE_BUMP_SCRIPT,
  namespaceVersion,
  UNORDERED_NAMESPACE_VERSION,
  type PurgeTargets,
} from '@walpurge/rules';
import { uniqueName } from '@walpurge/testing';
import { deleteKeys } from '../../../test/harness.js';
import { OTHERS_PURGED } from '../purger.js';
import { RedisPurger } from './redis-purger.js';

/** Namespace version bumps of the Redis target on the shared standalone Redis. */
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

function newPurger(label: string): { purger: RedisPurger; prefix: string } {
  const prefix = `${uniqueName(label)}:`;
  prefixes.push(prefix);
  return {
    purger: new RedisPurger(new Redis(services.redisUrl), {
      keyPrefix: prefix,
      batchSize: 50,
      scanCount: 50,
    }),
    prefix,
  };
}

function bumps(versions: Record<string, string>): PurgeTargets {
  const targets = emptyTargets();
  targets.redis.namespaces.push(...Object.keys(versions));
  targets.redis.namespaceVersions = Object.fromEntries(
    Object.entries(versions).map(([namespace, lsn]) => [namespace, namespaceVersion(lsn)]),
  );
  return targets;
}

const context = () => ({ signal: new AbortController().signal });

/** The stored version as `<epoch>:<LSN part>`. */
async function stored(key: string): Promise<{ epoch: string; lsn: string }> {
  const value = (await redis.get(key)) ?? '';
  const [epoch = '', lsn = ''] = value.split(':');
  expect(value, key).toMatch(/^r[\w-]+\.\d+:[0-9a-f]{16}$/);
  return { epoch, lsn };
}

describe('namespace bumps', () => {
  it('set <prefix>ns:<namespace> to a fresh epoch and the LSN only if greater: replays and late events never move it', async () => {
    const { purger, prefix } = newPurger('ns_bump');
    try {
      await purger.purge(bumps({ 'user:42': '1/0', catalog: '0/10' }), context());
      const first = await stored(`${prefix}ns:user:42`);
      expect(first.lsn).toBe('0000000100000000');
      expect((await stored(`${prefix}ns:catalog`)).lsn).toBe('0000000000000010');
      // A late event of another partition (lower LSN) and a replay of the same one: no change.
      await purger.purge(bumps({ 'user:42': '0/FFFFFFFF' }), context());
      await purger.purge(bumps({ 'user:42': '1/0' }), context());
      expect(await stored(`${prefix}ns:user:42`)).toEqual(first);
      await purger.purge(bumps({ 'user:42': '1/1' }), context());
      const second = await stored(`${prefix}ns:user:42`);
      expect(second.lsn).toBe('0000000100000001');
      expect(second.epoch).not.toBe(first.epoch);
      expect(await redis.ttl(`${prefix}ns:user:42`)).toBe(-1);
      // A reader's epoch (LSN part 0) is replaced by the first bump.
      await redis.set(`${prefix}ns:fresh`, 'rReader:0000000000000000');
      await purger.purge(bumps({ fresh: '0/1' }), context());
      expect((await stored(`${prefix}ns:fresh`)).lsn).toBe('0000000000000001');
    } finally {
      await purger.close();
    }
  });

  it('an evicted version key followed by a replay of an older change never brings back an old value', async () => {
    const { purger, prefix } = newPurger('ns_evicted');
    try {
      const key = `${prefix}ns:site`;
      const seen = new Set<string>();
      await purger.purge(bumps({ site: '0/100' }), context());
      seen.add((await redis.get(key)) ?? '');
      await purger.purge(bumps({ site: '0/200' }), context());
      seen.add((await redis.get(key)) ?? '');
      await redis.unlink(key); // evicted (allkeys-* policy)
      await purger.purge(bumps({ site: '0/100' }), context()); // the older change, replayed
      const now = (await redis.get(key)) ?? '';
      expect((await stored(key)).lsn).toBe('0000000000000100');
      expect(seen.has(now)).toBe(false);
    } finally {
      await purger.close();
    }
  });

  it('events without a commit LSN bump unordered: always, to a fresh value with LSN part 0', async () => {
    const { purger, prefix } = newPurger('ns_unordered');
    try {
      const key = `${prefix}ns:feed`;
      await purger.purge(bumps({ feed: '5/0' }), context());
      const ordered = (await redis.get(key)) ?? '';
      const targets = emptyTargets();
      targets.redis.namespaces.push('feed');
      targets.redis.namespaceVersions = { feed: UNORDERED_NAMESPACE_VERSION };
      await purger.purge(targets, context());
      const unordered = await stored(key);
      expect(unordered.lsn).toBe('0'.repeat(16));
      expect(`${unordered.epoch}:${unordered.lsn}`).not.toBe(ordered);
    } finally {
      await purger.close();
    }
  });

  it('compares LSNs above 2^53 exactly (strings, not Lua numbers)', async () => {
    const { purger, prefix } = newPurger('ns_big');
    try {
      // As doubles, FFFFFFFF/FFFFFFFE and FFFFFFFF/FFFFFFFF are the same number.
      await purger.purge(bumps({ big: 'FFFFFFFF/FFFFFFFE' }), context());
      await purger.purge(bumps({ big: 'FFFFFFFF/FFFFFFFF' }), context());
      expect((await stored(`${prefix}ns:big`)).lsn).toBe('ffffffffffffffff');
    } finally {
      await purger.close();
    }
  });

  it('a version key of another type refuses the event for good; a namespace without a version is refused too', async () => {
    const { purger, prefix } = newPurger('ns_refused');
    try {
      await redis.sadd(`${prefix}ns:taken`, 'x');
      // The same event also names a key, a tag and another namespace: those are purged all the same.
      await redis.set(`${prefix}entry`, 'cached');
      await redis.set(`${prefix}tagged`, 'cached');
      await redis.sadd(`${prefix}tag:t`, 'tagged');
      const event = bumps({ taken: '1/0', other: '1/0' });
      event.redis.keys.push('entry');
      event.redis.tags.push('t');
      const wrongType = await purger.purge(event, context()).catch((e: unknown) => e);
      expect(wrongType).toBeInstanceOf(WalpurgeError);
      expect(isRetriable(wrongType)).toBe(false);
      expect(String(wrongType)).toContain(
        `namespace version ${prefix}ns:taken holds another type than a string`,
      );
      expect((wrongType as WalpurgeError).details?.[OTHERS_PURGED]).toBe(true);
      expect(await redis.exists(`${prefix}entry`, `${prefix}tagged`)).toBe(0);
      expect((await stored(`${prefix}ns:other`)).lsn).toBe('0000000100000000');

      const targets = emptyTargets();
      targets.redis.namespaces.push('unversioned');
      const missing = await purger.purge(targets, context()).catch((e: unknown) => e);
      expect(isRetriable(missing)).toBe(false);
      expect(String(missing)).toContain('namespace unversioned has no version');
      expect(await redis.exists(`${prefix}ns:unversioned`)).toBe(0);
    } finally {
      await purger.close();
    }
  });

  it("a pattern that also matches walpurge's tag sets and namespace versions purges only cache entries", async () => {
    const { purger, prefix } = newPurger('ns_pattern');
    try {
      await redis.set(`${prefix}entry`, 'cached');
      await redis.sadd(`${prefix}tag:t`, 'entry');
      await redis.set(`${prefix}ns:catalog`, 'rKeep:0000000000000010');
      const targets = emptyTargets();
      targets.redis.patterns.push('*');
      await purger.purge(targets, context());
      expect(await redis.exists(`${prefix}entry`)).toBe(0);
      expect(await redis.smembers(`${prefix}tag:t`)).toEqual(['entry']);
      expect(await redis.get(`${prefix}ns:catalog`)).toBe('rKeep:0000000000000010');
    } finally {
      await purger.close();
    }
  });

  it('the same bump sent twice (a resend after a lost reply) stores two different values', async () => {
    const key = `${uniqueName('ns_resend')}:ns:feed`;
    prefixes.push(key);
    const send = () => redis.eval(NAMESPACE_BUMP_SCRIPT, 1, key, UNORDERED_NAMESPACE_VERSION, 'rSameEpoch');
    await send();
    const first = await redis.get(key);
    await send();
    expect(await redis.get(key)).not.toBe(first);
  });
});
