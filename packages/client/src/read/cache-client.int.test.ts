import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Registry } from '@walpurge/core';
import { tagSetKey } from '@walpurge/rules';
import { uniqueName, waitFor } from '@walpurge/testing';
import { createCacheClient } from './cache-client.js';
import { PayloadMarker } from './serializer.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** TCP proxy to Redis that can stop forwarding replies: a server that hangs without disconnecting. */
async function freezableProxy(
  target: string,
): Promise<{ url: string; freeze(): void; close(): Promise<void> }> {
  const { hostname, port } = new URL(target);
  let frozen = false;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(Number(port), hostname);
    sockets.add(client).add(upstream);
    client.on('data', (chunk) => upstream.write(chunk));
    upstream.on('data', (chunk) => {
      if (!frozen) client.write(chunk);
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `redis://127.0.0.1:${(server.address() as AddressInfo).port}`,
    freeze: () => (frozen = true),
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe('createCacheClient against real Redis', () => {
  const { redisUrl } = inject('services');
  let redis: Redis;
  let admin: Redis;

  beforeAll(async () => {
    redis = new Redis(redisUrl);
    admin = new Redis(redisUrl);
    await Promise.all([redis.ping(), admin.ping()]);
  });
  afterAll(() => {
    redis.disconnect();
    admin.disconnect();
  });

  /** What the invalidator does for a tag (see @walpurge/rules tag-set.ts): purge the members, SREM them. */
  async function purgeTag(prefix: string, tag: string): Promise<void> {
    const setKey = tagSetKey(prefix, tag);
    const members = await admin.smembers(setKey);
    if (members.length === 0) return;
    await admin.srem(setKey, ...members);
    await admin.unlink(...members.map((member) => prefix + member));
  }

  it('stores one hash per key with a TTL, serves hits without the loader, and registers tags', async () => {
    const prefix = `${uniqueName('basic')}:`;
    const client = createCacheClient({ redis, keyPrefix: prefix, earlyRefreshBeta: 0, ttlJitter: 0 });
    let calls = 0;
    const loader = async () => ({ id: 1, name: `Ada ${++calls}` });
    expect(
      await client.get('user:1', loader, { ttl: 60, staleWhileRevalidate: 30, tags: ['user-1', 'users'] }),
    ).toEqual({ id: 1, name: 'Ada 1' });
    expect(await client.get('user:1', loader, { ttl: 60 })).toEqual({ id: 1, name: 'Ada 1' });
    expect(calls).toBe(1);

    const fields = await admin.hgetall(`${prefix}user:1`);
    // No `ver`: the get gave no version function. ft/ls: fill and load times (see entry-layout.ts).
    expect(Object.keys(fields).sort()).toEqual(['d', 'e', 'ft', 'ls', 'v']);
    const pttl = await admin.pttl(`${prefix}user:1`);
    expect(pttl).toBeGreaterThan(80_000);
    expect(pttl).toBeLessThanOrEqual(90_000);
    expect(await admin.smembers(tagSetKey(prefix, 'user-1'))).toEqual(['user:1']);
    expect(await admin.pttl(tagSetKey(prefix, 'users'))).toBeGreaterThanOrEqual(pttl - 1_000);

    await purgeTag(prefix, 'users');
    expect(await client.get('user:1', loader, { ttl: 60, tags: ['users'] })).toEqual({
      id: 1,
      name: 'Ada 2',
    });
    await client.close();
  });

  it('rejects a fill whose key was purged by tag while the loader ran (the lease is registered in the tag set)', async () => {
    const prefix = `${uniqueName('tagrace')}:`;
    const client = createCacheClient({ redis, keyPrefix: prefix, earlyRefreshBeta: 0 });
    let value = 'old';
    const result = await client.get(
      'post:9',
      async () => {
        const read = value; // read "the database"
        value = 'new'; // a write commits...
        await purgeTag(prefix, 'post-9'); // ...and the pipeline purges the tag
        return read;
      },
      { ttl: 60, tags: ['post-9'] },
    );
    expect(result).toBe('old'); // the caller gets what it read
    expect(await admin.exists(`${prefix}post:9`)).toBe(0); // but it was not stored
    expect((await client.metrics.fillRejections.get()).values[0]?.value).toBe(1);
    expect(await client.get('post:9', async () => value, { ttl: 60, tags: ['post-9'] })).toBe('new');
    await client.close();
  });

  it('serves the stale value within the window while exactly one caller refreshes', async () => {
    const prefix = `${uniqueName('swr')}:`;
    const client = createCacheClient({
      redis,
      keyPrefix: prefix,
      earlyRefreshBeta: 0,
      ttlJitter: 0,
      coalesce: false,
    });
    let version = 1;
    let calls = 0;
    const loader = async () => {
      calls += 1;
      await sleep(50);
      return `v${version}`;
    };
    const options = { ttl: 0.2, staleWhileRevalidate: 30 };
    expect(await client.get('k', loader, options)).toBe('v1');
    version = 2;
    await sleep(300);
    const during = await Promise.all(Array.from({ length: 20 }, () => client.get('k', loader, options)));
    expect(new Set(during)).toEqual(new Set(['v1']));
    await waitFor('refreshed value', async () => (await client.get('k', loader, options)) === 'v2');
    expect(calls).toBe(2);
    expect((await client.metrics.staleServed.get()).values[0]?.value).toBeGreaterThanOrEqual(20);
    await client.close();
  });

  it('refreshes early (XFetch) in the background while still serving hits', async () => {
    const prefix = `${uniqueName('xfetch')}:`;
    // A huge beta makes every hit choose to refresh: the point is that it happens off the request path.
    const client = createCacheClient({ redis, keyPrefix: prefix, earlyRefreshBeta: 1e9, random: () => 0.5 });
    let version = 1;
    const loader = async () => {
      await sleep(5);
      return version;
    };
    expect(await client.get('k', loader, { ttl: 60 })).toBe(1);
    version = 2;
    expect(await client.get('k', loader, { ttl: 60 })).toBe(1);
    await waitFor('early refresh stored', async () => (await client.get('k', loader, { ttl: 60 })) === 2);
    expect((await client.metrics.earlyRefreshes.get()).values[0]?.value).toBeGreaterThanOrEqual(1);
    await client.close();
  });

  it('gives the lease back when the loader fails, so waiting callers load instead of timing out', async () => {
    const prefix = `${uniqueName('loaderr')}:`;
    const client = createCacheClient({
      redis,
      keyPrefix: prefix,
      coalesce: false,
      leases: { ttlMs: 60_000 },
    });
    const failing = client.get(
      'k',
      async () => {
        await sleep(100);
        throw new Error('database down');
      },
      { ttl: 60 },
    );
    await sleep(20);
    const waiter = client.get('k', async () => 'loaded by the waiter', { ttl: 60 });
    await expect(failing).rejects.toThrow('database down');
    expect(await waiter).toBe('loaded by the waiter');
    expect((await client.metrics.leaseWaitTimeouts.get()).values[0]?.value ?? 0).toBe(0);
    await client.close();
  });

  it('shortens TTLs by a random share of at most ttlJitter, never lengthens them', async () => {
    const prefix = `${uniqueName('jitter')}:`;
    const ttls: number[] = [];
    for (const draw of [0, 0.5, 0.999]) {
      const client = createCacheClient({
        redis,
        keyPrefix: prefix,
        ttlJitter: 0.4,
        earlyRefreshBeta: 0,
        random: () => draw,
      });
      await client.get(`k${draw}`, async () => draw, { ttl: 100, staleWhileRevalidate: 10 });
      const softExpiry = Number(await admin.hget(`${prefix}k${draw}`, 'e'));
      const [seconds, micros] = await admin.time();
      ttls.push(softExpiry - (Number(seconds) * 1000 + Math.floor(Number(micros) / 1000)));
      // The stale window comes on top of the jittered soft TTL.
      expect(await admin.pttl(`${prefix}k${draw}`)).toBeGreaterThan(ttls.at(-1)! + 9_000);
      await client.close();
    }
    const [none, half, most] = ttls as [number, number, number];
    expect(none).toBeGreaterThan(99_000);
    expect(none).toBeLessThanOrEqual(100_000);
    expect(half).toBeGreaterThan(79_000);
    expect(half).toBeLessThanOrEqual(80_000);
    expect(most).toBeGreaterThan(59_000);
    expect(most).toBeLessThanOrEqual(60_100);
  });

  it('takes a pluggable serializer (and never evaluates what it reads)', async () => {
    const prefix = `${uniqueName('serde')}:`;
    // A serializer that keeps Dates, which JSON would turn into strings.
    const client = createCacheClient({
      redis,
      keyPrefix: prefix,
      serializer: {
        serialize: (value) =>
          // `this[key]` is the value before Date#toJSON turned it into a string.
          JSON.stringify(value, function (this: Record<string, unknown>, key: string, v: unknown) {
            const raw = this[key];
            return raw instanceof Date ? { $date: raw.getTime() } : v;
          }),
        deserialize: (data) =>
          JSON.parse(data.toString(), (_k, v: unknown) =>
            v && typeof v === 'object' && '$date' in v ? new Date(Number((v as { $date: number }).$date)) : v,
          ) as unknown,
      },
    });
    const at = new Date('2026-01-02T03:04:05Z');
    await client.get('d', async () => ({ at }), { ttl: 60 });
    const again = await client.get<{ at: Date }>('d', async () => ({ at: new Date(0) }), { ttl: 60 });
    expect(again.at).toBeInstanceOf(Date);
    expect(again.at.getTime()).toBe(at.getTime());
    expect((await admin.hget(`${prefix}d`, 'v'))?.slice(1)).toBe(`{"at":{"$date":${at.getTime()}}}`);
    await client.close();
  });

  it('compresses large values with a marker byte', async () => {
    const prefix = `${uniqueName('gzip')}:`;
    const client = createCacheClient({
      redis,
      keyPrefix: prefix,
      compression: { algorithm: 'gzip', thresholdBytes: 256 },
    });
    const big = { text: 'row '.repeat(2_000) };
    expect(await client.get('big', async () => big, { ttl: 60 })).toEqual(big);
    const stored = await admin.hgetBuffer(`${prefix}big`, 'v');
    expect(stored?.[0]).toBe(PayloadMarker.Gzip);
    expect(stored!.length).toBeLessThan(500);
    expect(await client.get('big', async () => ({ text: 'not called' }), { ttl: 60 })).toEqual(big);
    await client.close();
  });

  it('fails open to the loader when Redis is unreachable, and counts it', async () => {
    const registry = new Registry();
    // Nothing listens on port 1: every Redis call fails fast.
    const client = createCacheClient({
      redis: 'redis://127.0.0.1:1',
      keyPrefix: 'x:',
      registry,
      redisTimeoutMs: 100,
    });
    let calls = 0;
    for (let i = 0; i < 3; i++) expect(await client.get('k', async () => ++calls, { ttl: 60 })).toBe(i + 1);
    const metrics = await registry.getMetricsAsJSON();
    const failOpen = metrics.find((m) => m.name === 'walpurge_client_fail_open_total');
    const total = failOpen?.values.reduce((sum, v) => sum + v.value, 0) ?? 0;
    expect(total).toBe(3);
    await client.close();
  });

  it('fails open when Redis stops answering (hung connection) within the timeout', async () => {
    const prefix = `${uniqueName('hung')}:`;
    const proxy = await freezableProxy(redisUrl);
    const own = new Redis(proxy.url);
    await own.ping();
    const client = createCacheClient({ redis: own, keyPrefix: prefix, redisTimeoutMs: 100 });
    proxy.freeze(); // connected, but nothing comes back: only the client's own timeout can end get()
    expect(await client.get('k', async () => 'from db', { ttl: 60 })).toBe('from db');
    const values = (await client.metrics.failOpen.get()).values;
    expect(values.find((v) => v.labels['reason'] === 'timeout')?.value).toBe(1);
    await client.close();
    own.disconnect();
    await proxy.close();
  });
});
