import { Redis } from 'ioredis';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { uniqueName } from './index.js';

describe('Redis from the test environment', () => {
  const { redisUrl } = inject('services');
  const prefix = `${uniqueName('redis_smoke')}:`;
  const redis = new Redis(redisUrl, { keyPrefix: prefix, lazyConnect: true });

  afterAll(async () => {
    // keyPrefix does not apply to SCAN patterns' results, so delete through an unprefixed client.
    const raw = new Redis(redisUrl);
    const keys = await raw.keys(`${prefix}*`);
    if (keys.length > 0) await raw.del(...keys);
    raw.disconnect();
    redis.disconnect();
  });

  it('stores and reads back a value under a per-suite key prefix', async () => {
    await redis.connect();
    await redis.set('user:1', 'cached', 'EX', 60);
    expect(await redis.get('user:1')).toBe('cached');

    const raw = new Redis(redisUrl);
    try {
      expect(await raw.get(`${prefix}user:1`)).toBe('cached');
    } finally {
      raw.disconnect();
    }
  });
});
