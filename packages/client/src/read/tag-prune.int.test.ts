import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { tagSetKey } from '@walpurge/rules';
import { uniqueName, waitFor } from '@walpurge/testing';
import { createCacheClient } from './cache-client.js';

/**
 * A tag set gains a member for every entry filled with the tag, and its TTL is pushed out by every
 * fill: for a busy tag ("users") it never expires, so members whose entries expired long ago pile
 * up forever unless the SDK prunes them.
 */
describe('pruning tag sets of expired members', () => {
  const { redisUrl } = inject('services');
  let redis: Redis;

  beforeAll(async () => {
    redis = new Redis(redisUrl);
    await redis.ping();
  });
  afterAll(() => redis.disconnect());

  it('removes members whose entries are gone, keeps those still cached', async () => {
    const prefix = `${uniqueName('tag_prune')}:`;
    const setKey = tagSetKey(prefix, 'users');
    const dead = Array.from({ length: 300 }, (_, i) => `expired:${i}`);
    await redis.sadd(setKey, ...dead);
    const client = createCacheClient({
      redis,
      keyPrefix: prefix,
      earlyRefreshBeta: 0,
      tagPruning: { everyFills: 5, pageSize: 1_000 },
    });
    try {
      const live = Array.from({ length: 10 }, (_, i) => `user:${i}`);
      for (const key of live) await client.get(key, async () => key, { ttl: 600, tags: ['users'] });
      await waitFor(
        'the expired members to be pruned',
        async () => (await redis.scard(setKey)) === live.length,
        {
          timeoutMs: 10_000,
        },
      );
      expect((await redis.smembers(setKey)).sort()).toEqual([...live].sort());
      const { values } = await client.metrics.tagMembersPruned.get();
      expect(values[0]?.value).toBe(dead.length);
    } finally {
      await client.close();
      await redis.unlink(setKey, ...Array.from({ length: 10 }, (_, i) => `${prefix}user:${i}`));
    }
  });
});
