import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { NAMESPACE_BUMP_SCRIPT, namespaceKey, namespaceVersion, newNamespaceEpoch } from '@walpurge/rules';
import { uniqueName, waitFor } from '@walpurge/testing';
import { createCacheClient, type CacheClient } from './cache-client.js';

/**
 * Versioned namespaces on the shared standalone Redis: entries are stored under keys composed from
 * the namespace versions, and a bump (the invalidator's own script) makes them unreachable at once.
 */
const { redisUrl } = inject('services');
let redis: Redis;
let admin: Redis;
const clients: CacheClient[] = [];

beforeAll(async () => {
  redis = new Redis(redisUrl);
  admin = new Redis(redisUrl);
  await Promise.all([redis.ping(), admin.ping()]);
});
afterAll(async () => {
  await Promise.all(clients.map((client) => client.close()));
  redis?.disconnect();
  admin?.disconnect();
});

let lsn = 0x1000;
/** What the invalidator does for a change in `namespace`: set its version to the commit LSN if greater. */
async function bump(prefix: string, namespace: string): Promise<void> {
  lsn += 0x10;
  await admin.eval(
    NAMESPACE_BUMP_SCRIPT,
    1,
    namespaceKey(prefix, namespace),
    namespaceVersion(`0/${lsn.toString(16)}`),
    newNamespaceEpoch(),
  );
}

function counting(initial: string) {
  const state = { value: initial, calls: 0 };
  return { state, loader: async () => ((state.calls += 1), state.value) };
}

function newClient(prefix: string, l1: boolean): CacheClient {
  const client = createCacheClient({
    redis,
    keyPrefix: prefix,
    earlyRefreshBeta: 0,
    ...(l1 ? { l1: { maxStalenessMs: 600_000 } } : {}),
  });
  clients.push(client);
  return client;
}

async function counter(client: CacheClient, source: string): Promise<number> {
  const { values } = await client.metrics.namespaceVersionReads.get();
  return values.find((v) => v.labels.source === source)?.value ?? 0;
}

describe('versioned namespaces', () => {
  it('a bump makes every entry under the namespace unreachable at once, without deleting or scanning', async () => {
    const prefix = `${uniqueName('ns_client')}:`;
    const client = newClient(prefix, false);
    const orders = counting('orders-1');
    const profile = counting('profile-1');
    const other = counting('other-1');
    const read = () =>
      Promise.all([
        client.get('user:42:orders', orders.loader, { ttl: 600, namespaces: ['user:42'] }),
        client.get('user:42:profile', profile.loader, { ttl: 600, namespaces: ['user:42', 'catalog'] }),
        client.get('user:7:orders', other.loader, { ttl: 600, namespaces: ['user:7'] }),
      ]);
    expect(await read()).toEqual(['orders-1', 'profile-1', 'other-1']);
    expect(await read()).toEqual(['orders-1', 'profile-1', 'other-1']);
    expect([orders.state.calls, profile.state.calls, other.state.calls]).toEqual([1, 1, 1]);
    // Never bumped: the first reader gave each namespace a random epoch; composed in sorted order.
    const epochs = await admin.mget(namespaceKey(prefix, 'catalog'), namespaceKey(prefix, 'user:42'));
    expect(epochs.map((epoch) => epoch?.[0])).toEqual(['r', 'r']);
    expect(await admin.exists(`${prefix}user:42:profile@catalog=${epochs[0]},user:42=${epochs[1]}`)).toBe(1);

    orders.state.value = 'orders-2';
    profile.state.value = 'profile-2';
    await bump(prefix, 'user:42');
    expect(await read()).toEqual(['orders-2', 'profile-2', 'other-1']);
    expect([orders.state.calls, profile.state.calls, other.state.calls]).toEqual([2, 2, 1]);
    // The old entries are still there (they expire by TTL); no reader composes their key any more.
    expect(await admin.exists(`${prefix}user:42:orders@user:42=${epochs[1] ?? ''}`)).toBe(1);
    const version = await admin.get(namespaceKey(prefix, 'user:42'));
    expect(await admin.exists(`${prefix}user:42:orders@user:42=${version ?? ''}`)).toBe(1);
  });

  it('a version key that disappears (evicted) never makes entries stored before reachable again', async () => {
    const prefix = `${uniqueName('ns_evicted')}:`;
    const client = newClient(prefix, false);
    const source = counting('before');
    const get = () => client.get('page', source.loader, { ttl: 600, namespaces: ['site'] });
    expect(await get()).toBe('before');
    await bump(prefix, 'site');
    source.state.value = 'bumped';
    expect(await get()).toBe('bumped');
    // An allkeys-* eviction policy drops the version key; the entries of both versions are alive.
    await admin.unlink(namespaceKey(prefix, 'site'));
    source.state.value = 'after eviction';
    expect(await get()).toBe('after eviction');
    expect(source.state.calls).toBe(3);
    // A replay of an older change than every bump so far moves the version again, to a value never
    // seen before: neither entry stored earlier becomes reachable.
    await admin.eval(
      NAMESPACE_BUMP_SCRIPT,
      1,
      namespaceKey(prefix, 'site'),
      namespaceVersion('0/1'),
      newNamespaceEpoch(),
    );
    expect(await admin.get(namespaceKey(prefix, 'site'))).toMatch(/^r[\w-]+\.\d+:0000000000000001$/);
    source.state.value = 'after replay';
    expect(await get()).toBe('after replay');
    expect(source.state.calls).toBe(4);
  });

  it('a fill that started before a bump lands under the old version, where no reader looks', async () => {
    const prefix = `${uniqueName('ns_race')}:`;
    const client = newClient(prefix, false);
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    let loaded = false;
    const slowOld = async () => {
      loaded = true;
      await gate; // the database was read before the commit; the value is old
      return 'old';
    };
    const pending = client.get('catalog:page:1', slowOld, { ttl: 600, namespaces: ['catalog'] });
    await waitFor('the slow loader to start', async () => loaded);
    const before = await admin.get(namespaceKey(prefix, 'catalog'));
    // The write commits and the invalidator bumps while the reader still holds its old value.
    await bump(prefix, 'catalog');
    release();
    expect(await pending).toBe('old');
    // Stored, under the version read before the bump: unreachable.
    expect(await admin.exists(`${prefix}catalog:page:1@catalog=${before ?? ''}`)).toBe(1);

    const fresh = counting('new');
    expect(await client.get('catalog:page:1', fresh.loader, { ttl: 600, namespaces: ['catalog'] })).toBe(
      'new',
    );
    expect(fresh.state.calls).toBe(1);
  });

  it('with L1, versions are read from process memory and a bump evicts them through tracking', async () => {
    const prefix = `${uniqueName('ns_l1')}:`;
    const client = newClient(prefix, true);
    await client.ready();
    const source = counting('v1');
    const get = () => client.get('feed:1', source.loader, { ttl: 600, namespaces: ['feed'] });
    expect(await get()).toBe('v1');
    await waitFor('the version and entry served from L1', async () => {
      const before = await counter(client, 'redis');
      await get();
      return (await counter(client, 'redis')) === before;
    });
    expect(await counter(client, 'l1')).toBeGreaterThan(0);
    expect(source.state.calls).toBe(1);

    source.state.value = 'v2';
    await bump(prefix, 'feed');
    // maxStalenessMs is 10 minutes: only the tracking message can make L1 forget the old version.
    await waitFor('the bump to reach L1', async () => (await get()) === 'v2');
    expect(source.state.calls).toBe(2);
  });

  it('fails open to the loader when the versions cannot be read', async () => {
    const prefix = `${uniqueName('ns_down')}:`;
    const down = createCacheClient({
      redis: new Redis({ port: 1, lazyConnect: true, retryStrategy: () => null }),
      keyPrefix: prefix,
    });
    clients.push(down);
    const source = counting('db');
    expect(await down.get('x', source.loader, { ttl: 60, namespaces: ['n'] })).toBe('db');
    const { values } = await down.metrics.failOpen.get();
    expect(values.reduce((sum, v) => sum + v.value, 0)).toBe(1);
  });

  it('warm() fills the key composed from the current versions; refresh-on-invalidate is refused with namespaces', async () => {
    const prefix = `${uniqueName('ns_warm')}:`;
    const client = newClient(prefix, true);
    const home = counting('home-1');
    const report = await client.warm([
      { key: 'home', loader: home.loader, ttl: 600, namespaces: ['catalog'] },
    ]);
    expect(report.failures).toEqual([]);
    expect(report.loaded).toBe(1);
    expect(home.state.calls).toBe(1);
    // The reader composes the same key: a hit, no load.
    expect(await client.get('home', home.loader, { ttl: 600, namespaces: ['catalog'] })).toBe('home-1');
    expect(home.state.calls).toBe(1);
    // After a bump, warm loads again under the new version.
    await bump(prefix, 'catalog');
    home.state.value = 'home-2';
    await waitFor('the warm under the new version', async () => {
      await client.warm([{ key: 'home', loader: home.loader, ttl: 600, namespaces: ['catalog'] }]);
      return (await client.get('home', home.loader, { ttl: 600, namespaces: ['catalog'] })) === 'home-2';
    });
    await expect(
      client.get('home', home.loader, { ttl: 600, namespaces: ['catalog'], refresh: 'on-invalidate' }),
    ).rejects.toThrow("refresh: 'on-invalidate' cannot be combined with namespaces");
    // Keys where walpurge keeps namespace versions and tag sets are refused, not shadowed.
    for (const reserved of ['ns:catalog', 'tag:t'])
      await expect(client.get(reserved, home.loader, { ttl: 600 })).rejects.toThrow(
        "keys starting with 'tag:' or 'ns:' are walpurge's tag sets and namespace versions",
      );
  });
});
