import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Registry } from '@walpurge/core';
import { startLocalRedis, uniqueName, waitFor, type LocalRedis } from '@walpurge/testing';
import { createCacheClient, type CacheClient } from './cache-client.js';

/**
 * Redis going away must cost latency budget, never availability: get() reads through to the loader
 * within the client's timeout, counts it, and goes back to caching once Redis returns. The Redis here
 * is a local server this file starts, stops and restarts on the same port.
 */
let server: LocalRedis;

beforeAll(async () => {
  server = await startLocalRedis();
});
afterAll(async () => {
  await server?.stop();
});

async function failOpenTotal(client: CacheClient): Promise<number> {
  return (await client.metrics.failOpen.get()).values.reduce((sum, v) => sum + v.value, 0);
}

describe('Redis unavailable: fail open to the loader', () => {
  it('serves every read from the loader while Redis is stopped, counts it, and caches again after restart', async () => {
    const port = server.port;
    const prefix = `${uniqueName('down')}:`;
    const registry = new Registry();
    // Two ways applications connect: a URL the client owns, and their own ioredis connection.
    const shared = new Redis(server.url, { maxRetriesPerRequest: 1, retryStrategy: () => 50 });
    shared.on('error', () => undefined);
    await shared.ping();
    const clients = [
      createCacheClient({ redis: server.url, keyPrefix: prefix, registry, redisTimeoutMs: 200 }),
      createCacheClient({ redis: shared, keyPrefix: prefix, registry, redisTimeoutMs: 200, l1: true }),
    ];
    await Promise.all(clients.map((client) => client.ready()));
    let loads = 0;
    const loader = async () => `row-${++loads}`;
    try {
      const first = await clients[0]!.get('k', loader, { ttl: 60 });
      for (const client of clients) expect(await client.get('k', loader, { ttl: 60 })).toBe(first);
      expect(loads).toBe(1);

      await server.stop();
      for (let i = 0; i < 5; i += 1) {
        for (const client of clients) {
          const before = loads;
          expect(await client.get('k', loader, { ttl: 60 })).toBe(`row-${before + 1}`);
        }
      }
      expect(loads).toBe(11);
      expect(await failOpenTotal(clients[0]!)).toBe(10); // one registry, both clients
      const reasons = (await clients[0]!.metrics.failOpen.get()).values.map((v) => v.labels['reason']);
      expect(reasons.every((reason) => ['not_connected', 'error', 'timeout'].includes(String(reason)))).toBe(
        true,
      );
      const byReason = await clients[0]!.metrics.loaderCalls.get();
      expect(byReason.values.find((v) => v.labels['reason'] === 'fail_open')?.value).toBe(10);

      server = await startLocalRedis({ port });
      for (const client of clients) {
        await waitFor(
          'caching again after Redis came back',
          async () => {
            const before = loads;
            await client.get('k2', loader, { ttl: 60 });
            await client.get('k2', loader, { ttl: 60 });
            return loads === before; // both served from the cache: someone filled it earlier
          },
          { timeoutMs: 20_000, intervalMs: 100 },
        );
      }
    } finally {
      for (const client of clients) await client.close();
      shared.disconnect();
    }
  });
});
