import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Registry } from '@walpurge/core';
import { uniqueName, waitFor } from '@walpurge/testing';
import { createCacheClient } from './cache-client.js';

/** Denials of `username` recorded in ACL LOG (identical denials are grouped, with a count). */
async function deniedCount(admin: Redis, username: string): Promise<number> {
  const entries = (await admin.call('ACL', 'LOG', '128')) as unknown[][];
  let total = 0;
  for (const entry of entries) {
    const fields = new Map<string, unknown>();
    for (let i = 0; i + 1 < entry.length; i += 2) fields.set(String(entry[i]), entry[i + 1]);
    if (fields.get('username') === username) total += Number(fields.get('count'));
  }
  return total;
}

describe('L1 invalidation tracking that Redis refuses to set up', () => {
  const { redisUrl } = inject('services');
  let admin: Redis;
  const user = uniqueName('no_tracking');

  beforeAll(async () => {
    admin = new Redis(redisUrl);
    // Everything allowed except CLIENT TRACKING: the set-up fails on every attempt, for good.
    await admin.call('ACL', 'SETUSER', user, 'on', '>secret-pw', '~*', '&*', '+@all', '-client|tracking');
  });
  afterAll(async () => {
    await admin.call('ACL', 'DELUSER', user);
    admin.disconnect();
  });

  it('retries with backoff, counts each failure, and keeps serving reads through Redis meanwhile', async () => {
    const prefix = `${uniqueName('tracking_setup')}:`;
    const url = new URL(redisUrl);
    url.username = user;
    url.password = 'secret-pw';
    const redis = new Redis(url.toString());
    await redis.ping();
    const registry = new Registry();
    const client = createCacheClient({ redis, keyPrefix: prefix, l1: true, registry });
    try {
      await client.ready();
      expect(client.trackingClientId()).toBeUndefined();
      expect(await client.get('k', async () => 'loaded', { ttl: 60 })).toBe('loaded');
      const before = await deniedCount(admin, user);
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      // A fixed 50 ms loop makes ~40 attempts in 2 s; backing off (doubling from 100 ms) makes a few.
      expect((await deniedCount(admin, user)) - before).toBeLessThanOrEqual(6);
      const failures = async () =>
        (await registry.getSingleMetric('walpurge_client_tracking_setup_failures_total')?.get())?.values[0]
          ?.value ?? 0;
      // It does keep trying (tracking may be allowed later), and each failure is counted.
      await waitFor('a retry of the set-up', async () => (await failures()) >= 2, { timeoutMs: 10_000 });
      expect(await client.get('k', async () => 'not called', { ttl: 60 })).toBe('loaded');
    } finally {
      await client.close();
      redis.disconnect();
      await admin.unlink(`${prefix}k`);
    }
  });
});
