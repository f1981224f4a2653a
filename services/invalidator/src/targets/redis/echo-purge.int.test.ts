import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { uniqueName } from '@walpurge/testing';
import { ECHO_PURGE_SCRIPT } from '@walpurge/rules';

/** The echo purge on real Redis, over every kind of value a row's key may hold. */
describe('ECHO_PURGE_SCRIPT', () => {
  let redis: Redis;
  beforeAll(async () => {
    redis = new Redis(inject('services').redisUrl);
    await redis.ping();
  });
  afterAll(() => redis.disconnect());

  it('keeps entries holding the committed version or newer; purges older, unversioned, refilled and non-hash values', async () => {
    const p = `${uniqueName('echo_script')}:`;
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
});
