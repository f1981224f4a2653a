import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  NAMESPACE_BUMP_SCRIPT,
  namespaceKey,
  namespaceVersion,
  newNamespaceEpoch,
  tagJournalKey,
  tagSetKey,
} from '@walpurge/rules';
import { startLocalRedisCluster, uniqueName, waitFor, type LocalRedisCluster } from '@walpurge/testing';
import { CacheWriter } from '../write/cache-writer.js';
import { createCacheClient, type CacheClient } from './cache-client.js';
import { ENTRY_FIELDS } from './entry-layout.js';

/**
 * The read SDK on a real three-master Redis Cluster. Each test owns a key prefix without a hash
 * tag, so its entries and tag sets spread over every master: a script that names an entry and its
 * tag sets together would fail with CROSSSLOT, and tracking on one node would see a third of the
 * invalidations.
 */
let cluster: LocalRedisCluster;
let admin: Cluster;
let masters: Redis[];

beforeAll(async () => {
  cluster = await startLocalRedisCluster({ masters: 3 });
  admin = new Cluster(cluster.nodes.map(({ port }) => ({ host: '127.0.0.1', port })));
  masters = cluster.nodes.map((node) => new Redis(node.url));
  await waitFor('the admin client to load the cluster topology', async () => admin.status === 'ready');
}, 60_000);
afterAll(async () => {
  admin?.disconnect();
  for (const master of masters ?? []) master.disconnect();
  await cluster?.stop();
});

/** Index of the master owning the key's hash slot (asked of the server: no slot code in the test). */
async function masterOf(key: string): Promise<number> {
  const slot = Number(await masters[0]!.call('CLUSTER', 'KEYSLOT', key));
  return cluster.nodes.findIndex(({ slots: [first, last] }) => slot >= first && slot <= last);
}

/** One key name per master, under `prefix`. */
async function keyPerMaster(prefix: string): Promise<string[]> {
  const found = new Map<number, string>();
  for (let i = 0; found.size < cluster.nodes.length; i++) {
    const key = `user:${i}`;
    const at = await masterOf(prefix + key);
    if (!found.has(at)) found.set(at, key);
  }
  return [...found.entries()].sort(([a], [b]) => a - b).map(([, key]) => key);
}

/** The invalidator's tag purge, reduced to what the test needs: unlink every member, one key at a time. */
async function purgeTag(prefix: string, tag: string): Promise<void> {
  const setKey = tagSetKey(prefix, tag);
  for (const member of await admin.smembers(setKey)) {
    await admin.unlink(prefix + member);
    await admin.srem(setKey, member);
  }
}

function counting(value: () => string) {
  const state = { calls: 0 };
  return { state, loader: async () => ((state.calls += 1), value()) };
}

describe('createCacheClient on Redis Cluster', () => {
  let client: CacheClient | undefined;
  afterAll(async () => client?.close());

  it('caches entries whose tag sets live on other masters, and a tag purge removes them', async () => {
    const prefix = `${uniqueName('sdk_cluster')}:`;
    const seed = new Cluster(cluster.nodes.map(({ port }) => ({ host: '127.0.0.1', port })));
    await waitFor('the SDK cluster client to be ready', async () => seed.status === 'ready');
    client = createCacheClient({ redis: seed, keyPrefix: prefix, earlyRefreshBeta: 0 });
    const tags = ['users', 'team-1', 'team-2', 'team-3'];
    // The entries and the tag sets are spread over all three masters.
    const tagMasters = await Promise.all(tags.map((tag) => masterOf(tagSetKey(prefix, tag))));
    expect(new Set(tagMasters).size).toBeGreaterThan(1);
    for (const key of await keyPerMaster(prefix)) {
      let value = 'v1';
      const db = counting(() => value);
      expect(await client.get(key, db.loader, { ttl: 600, tags })).toBe('v1');
      expect(await client.get(key, db.loader, { ttl: 600, tags })).toBe('v1');
      expect(db.state.calls).toBe(1); // the second read was a Redis hit, not a fail-open
      for (const tag of tags) expect(await admin.sismember(tagSetKey(prefix, tag), key)).toBe(1);
      value = 'v2';
      await purgeTag(prefix, 'team-2');
      expect(await client.get(key, db.loader, { ttl: 600, tags })).toBe('v2');
      expect(db.state.calls).toBe(2);
    }
    const { values } = await client.metrics.failOpen.get();
    expect(values.reduce((sum, v) => sum + v.value, 0)).toBe(0);
    await client.close();
    client = undefined;
    seed.disconnect();
  });

  it('a tag purge during the load rejects the fill, whichever master holds the tag set', async () => {
    const prefix = `${uniqueName('sdk_cluster_race')}:`;
    const seed = new Cluster(cluster.nodes.map(({ port }) => ({ host: '127.0.0.1', port })));
    await waitFor('the SDK cluster client to be ready', async () => seed.status === 'ready');
    client = createCacheClient({ redis: seed, keyPrefix: prefix, earlyRefreshBeta: 0 });
    for (const key of await keyPerMaster(prefix)) {
      const read = client.get(
        key,
        async () => {
          await purgeTag(prefix, 'users'); // the write committed and was purged while we loaded
          return 'read before the write';
        },
        { ttl: 600, tags: ['users'] },
      );
      expect(await read).toBe('read before the write');
      expect(await admin.exists(prefix + key)).toBe(0);
      // The next read fills the entry for good: the rejection was the purge's doing, not CROSSSLOT.
      const db = counting(() => 'after the write');
      expect(await client.get(key, db.loader, { ttl: 600, tags: ['users'] })).toBe('after the write');
      expect(await client.get(key, db.loader, { ttl: 600, tags: ['users'] })).toBe('after the write');
      expect(db.state.calls).toBe(1);
    }
    await client.close();
    client = undefined;
    seed.disconnect();
  });

  it('stores the row version, fill time and load start on every master (the entry scripts run in its slot alone)', async () => {
    const prefix = `${uniqueName('sdk_cluster_ver')}:`;
    const seed = new Cluster(cluster.nodes.map(({ port }) => ({ host: '127.0.0.1', port })));
    await waitFor('the SDK cluster client to be ready', async () => seed.status === 'ready');
    client = createCacheClient({ redis: seed, keyPrefix: prefix, earlyRefreshBeta: 0 });
    const keys = await keyPerMaster(prefix);
    for (const [i, key] of keys.entries()) {
      await client.get(key, async () => ({ rev: i + 10 }), {
        ttl: 600,
        tags: ['users'],
        version: (row) => BigInt(row.rev),
      });
      const { version, filledAt, loadStartedAt, leaseTakenAt } = ENTRY_FIELDS;
      const [ver, ft, ls, lt] = await admin.hmget(
        prefix + key,
        version,
        filledAt,
        loadStartedAt,
        leaseTakenAt,
      );
      expect(ver).toBe(String(i + 10));
      expect(lt).toBeNull();
      expect(Number(ls)).toBeGreaterThan(0);
      expect(Number(ls)).toBeLessThanOrEqual(Number(ft));
    }
    await client.close();
    client = undefined;
    seed.disconnect();
  });

  it('prunes tag-set members whose entries are gone, parking them in the journal the tag purge drains', async () => {
    const prefix = `${uniqueName('sdk_cluster_prune')}:`;
    const seed = new Cluster(cluster.nodes.map(({ port }) => ({ host: '127.0.0.1', port })));
    await waitFor('the SDK cluster client to be ready', async () => seed.status === 'ready');
    client = createCacheClient({
      redis: seed,
      keyPrefix: prefix,
      earlyRefreshBeta: 0,
      tagPruning: { everyFills: 3, pageSize: 1_000 },
    });
    const setKey = tagSetKey(prefix, 'users');
    const dead = Array.from({ length: 200 }, (_, i) => `expired:${i}`);
    await admin.sadd(setKey, ...dead);
    const live = await keyPerMaster(prefix);
    for (const key of live) await client.get(key, async () => key, { ttl: 600, tags: ['users'] });
    await waitFor(
      'the expired members to be pruned',
      async () => (await admin.scard(setKey)) === live.length,
      {
        timeoutMs: 10_000,
      },
    );
    expect((await admin.smembers(setKey)).sort()).toEqual([...live].sort());
    // Parked members leave the journal once their check confirmed them dead: a step after the
    // SMOVE that emptied the set, so waited for rather than read at once.
    await waitFor(
      'the parked members to leave the journal',
      async () => (await admin.scard(tagJournalKey(setKey, prefix))) === 0,
    );
    await client.close();
    client = undefined;
    seed.disconnect();
  });

  it('L1 hears invalidations from every master', async () => {
    const prefix = `${uniqueName('sdk_cluster_l1')}:`;
    const seed = new Cluster(cluster.nodes.map(({ port }) => ({ host: '127.0.0.1', port })));
    await waitFor('the SDK cluster client to be ready', async () => seed.status === 'ready');
    client = createCacheClient({
      redis: seed,
      keyPrefix: prefix,
      earlyRefreshBeta: 0,
      l1: { maxStalenessMs: 600_000 },
    });
    await client.ready();
    for (const key of await keyPerMaster(prefix)) {
      let value = 'v1';
      const db = counting(() => value);
      await waitFor(`${key} served from L1`, async () => {
        const before = (await client!.metrics.requests.get()).values.find(
          (v) => v.labels['level'] === 'l1' && v.labels['result'] === 'hit',
        )?.value;
        await client!.get(key, db.loader, { ttl: 600 });
        const after = (await client!.metrics.requests.get()).values.find(
          (v) => v.labels['level'] === 'l1' && v.labels['result'] === 'hit',
        )?.value;
        return (after ?? 0) > (before ?? 0);
      });
      value = 'v2';
      // Purged directly on the master that owns it, as the invalidator would.
      await masters[await masterOf(prefix + key)]!.unlink(prefix + key);
      await waitFor(
        `the purge of ${key} seen through L1`,
        async () => (await client!.get(key, db.loader, { ttl: 600 })) === 'v2',
        { timeoutMs: 10_000, intervalMs: 20 },
      );
    }
    await client.close();
    client = undefined;
    seed.disconnect();
  });

  it('namespaces: versions in every slot are read in one go, a bump on any master is seen through L1, a racing fill lands under the old version', async () => {
    const prefix = `${uniqueName('sdk_cluster_ns')}:`;
    const seed = new Cluster(cluster.nodes.map(({ port }) => ({ host: '127.0.0.1', port })));
    await waitFor('the SDK cluster client to be ready', async () => seed.status === 'ready');
    client = createCacheClient({
      redis: seed,
      keyPrefix: prefix,
      earlyRefreshBeta: 0,
      l1: { maxStalenessMs: 600_000 },
    });
    await client.ready();
    // One namespace whose version key lives on each master.
    const namespaces: string[] = [];
    for (let i = 0; namespaces.length < cluster.nodes.length; i++) {
      const at = await masterOf(namespaceKey(prefix, `team:${i}`));
      if (!(await Promise.all(namespaces.map((n) => masterOf(namespaceKey(prefix, n))))).includes(at))
        namespaces.push(`team:${i}`);
    }
    let lsn = 0x100;
    const bump = async (namespace: string) => {
      lsn += 0x10;
      const key = namespaceKey(prefix, namespace);
      // On the master that owns the version key, as the invalidator's one-key script does.
      await masters[await masterOf(key)]!.eval(
        NAMESPACE_BUMP_SCRIPT,
        1,
        key,
        namespaceVersion(`0/${lsn.toString(16)}`),
        newNamespaceEpoch(),
      );
    };
    let value = 'v1';
    const db = counting(() => value);
    const get = () => client!.get('report', db.loader, { ttl: 600, namespaces });
    expect(await get()).toBe('v1');
    for (const namespace of namespaces) {
      value = `after ${namespace}`;
      await bump(namespace);
      await waitFor(`the bump of ${namespace} seen through L1`, async () => (await get()) === value, {
        timeoutMs: 10_000,
        intervalMs: 20,
      });
    }
    expect(db.state.calls).toBe(1 + namespaces.length);

    // The race: the load reads the database before the write, the bump lands before the fill.
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    let loading = false;
    const slow = client.get(
      'race',
      async () => {
        loading = true;
        await gate;
        return 'old';
      },
      { ttl: 600, namespaces },
    );
    await waitFor('the slow load to start', async () => loading);
    await bump(namespaces[1]!);
    release();
    expect(await slow).toBe('old');
    const fresh = counting(() => 'new');
    await waitFor(
      'the bump seen through L1',
      async () => (await client!.get('race', fresh.loader, { ttl: 600, namespaces })) === 'new',
    );
    expect(fresh.state.calls).toBe(1);
    await client.close();
    client = undefined;
    seed.disconnect();
  });
});

describe('warm() and refresh-on-invalidate on Redis Cluster', () => {
  it('warms tagged keys on every master, and refreshes each after its purge on its master', async () => {
    const prefix = `${uniqueName('sdk_cluster_warm')}:`;
    const seed = new Cluster(cluster.nodes.map(({ port }) => ({ host: '127.0.0.1', port })));
    await waitFor('the SDK cluster client to be ready', async () => seed.status === 'ready');
    const client = createCacheClient({ redis: seed, keyPrefix: prefix, earlyRefreshBeta: 0, l1: true });
    try {
      await client.ready();
      const keys = await keyPerMaster(prefix);
      let version = 1;
      const db = counting(() => `v${version}`);
      const options = { ttl: 600, tags: ['users'], refresh: 'on-invalidate' } as const;
      const report = await client.warm(keys.map((key) => ({ key, loader: db.loader, ...options })));
      expect(report).toMatchObject({ loaded: keys.length, failed: 0 });
      // Tag sets live in other slots: registered there (a tag purge would find every key).
      expect((await admin.smembers(tagSetKey(prefix, 'users'))).sort()).toEqual([...keys].sort());

      version = 2;
      for (const key of keys) await masters[await masterOf(prefix + key)]!.unlink(prefix + key);
      const done = async () =>
        (await client.metrics.refreshes.get()).values.find((v) => v.labels['outcome'] === 'done')?.value ?? 0;
      await waitFor('every purged key refreshed', async () => (await done()) === keys.length, {
        timeoutMs: 20_000,
        intervalMs: 20,
      });
      const never = async (): Promise<string> => {
        throw new Error('the loader must not be called: the key was refreshed');
      };
      for (const key of keys) expect(await client.get(key, never, { ttl: 600 })).toBe('v2');
      expect(db.state.calls).toBe(2 * keys.length);
    } finally {
      await client.close();
      seed.disconnect();
    }
  });
});

describe('write-side cache writes on Redis Cluster', () => {
  it("a row's keys in different slots are all written and deleted under the version guard", async () => {
    const prefix = `${uniqueName('sdk_cluster_write')}:`;
    const seed = new Cluster(cluster.nodes.map(({ port }) => ({ host: '127.0.0.1', port })));
    await waitFor('the cluster client to be ready', async () => seed.status === 'ready');
    const writer = new CacheWriter({ redis: seed, keyPrefix: prefix, ttlMs: 60_000 });
    const keys = await keyPerMaster(prefix); // one key per master: three slots
    try {
      expect(await writer.set(keys, { name: 'A' }, '500')).toBe(keys.length);
      for (const key of keys) expect(await admin.hget(prefix + key, 'wv')).toBe('500');
      expect(await writer.set(keys, { name: 'older' }, '400')).toBe(0);
      expect(await writer.delete(keys, '600')).toBe(keys.length);
      for (const key of keys) expect(await admin.hgetall(prefix + key)).toEqual({ wv: '600' });
      await writer.forget(keys);
      for (const key of keys) expect(await admin.exists(prefix + key)).toBe(0);
    } finally {
      seed.disconnect();
    }
  });
});
