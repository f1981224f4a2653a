import calculateSlot from 'cluster-key-slot';
import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WalpurgeConfig, type WalpurgeConfigInput } from '@walpurge/config';
import { createMetricsRegistry, isRetriable, WalpurgeError, type Registry } from '@walpurge/core';
import type { ChangeEvent } from '@walpurge/protocol';
import { emptyTargets, namespaceVersion } from '@walpurge/rules';
import {
  freePort,
  startLocalRedisCluster,
  uniqueName,
  waitFor,
  type LocalRedisCluster,
} from '@walpurge/testing';
import { changeEvent, logger, metricValue } from '../test/harness.js';
import { createInvalidator, type Invalidator } from './create-invalidator.js';
import { RedisPurger } from './targets/redis/redis-purger.js';
import { tagJournalKey } from './targets/redis/tag-purge.js';

/**
 * The Redis target on a real three-master Redis Cluster (`redis.cluster: true`): a batch's keys
 * span every master, patterns are scanned on every master, tag sets and their members live in
 * different slots, and the write-behind echo purge runs per key. Each test owns a key prefix
 * without a hash tag, so its keys spread over all slots.
 */
let cluster: LocalRedisCluster;
let client: Cluster;
/** One plain connection per master, to see where keys physically are. */
let masters: Redis[];

beforeAll(async () => {
  cluster = await startLocalRedisCluster({ masters: 3 });
  client = new Cluster(cluster.nodes.map(({ port }) => ({ host: '127.0.0.1', port })));
  masters = cluster.nodes.map((node) => new Redis(node.url));
  await waitFor('the test client to load the cluster topology', async () => client.status === 'ready');
});
afterAll(async () => {
  client?.disconnect();
  for (const master of masters ?? []) master.disconnect();
  await cluster?.stop();
});

/** Index of the master owning the key's hash slot. */
function masterOf(key: string): number {
  const slot = calculateSlot(key);
  return cluster.nodes.findIndex(({ slots: [first, last] }) => slot >= first && slot <= last);
}

/** Keys under `prefix` stored on each master, found by SCAN on that master alone. */
async function keysPerMaster(prefix: string): Promise<string[][]> {
  return Promise.all(
    masters.map(async (master) => {
      const found: string[] = [];
      let cursor = '0';
      do {
        const [next, keys] = await master.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
        found.push(...keys);
        cursor = next;
      } while (cursor !== '0');
      return found.sort();
    }),
  );
}

/** Which of `keys` still exist; one EXISTS per key, since a multi-key EXISTS cannot span slots. */
async function existing(keys: readonly string[]): Promise<string[]> {
  const flags = await Promise.all(keys.map((key) => client.exists(key)));
  return keys.filter((_, i) => flags[i] === 1);
}

async function setAll(keys: readonly string[]): Promise<void> {
  await Promise.all(keys.map((key) => client.set(key, 'cached')));
}

interface Started {
  invalidator: Invalidator;
  registry: Registry;
  prefix: string;
}

/**
 * An inline-transport invalidator on the cluster, by default ready (its client has loaded the slot
 * map); `start()` itself does not wait for that, which `early` keeps.
 */
async function startInline(
  label: string,
  rules: WalpurgeConfigInput['rules'],
  invalidator: WalpurgeConfigInput['invalidator'] = {},
  { prefix = `${uniqueName(label)}:`, early = false }: { prefix?: string; early?: boolean } = {},
): Promise<Started> {
  const registry = createMetricsRegistry({ defaultMetrics: false });
  const config = WalpurgeConfig.parse({
    redis: { url: cluster.url, cluster: true, keyPrefix: prefix },
    invalidator: { retryInitialMs: 20, retryMaxMs: 200, ...invalidator },
    rules,
  });
  const started = createInvalidator({ config, logger, registry, consume: 'none' });
  await started.start(new AbortController().signal);
  if (!early) await waitFor('the invalidator to be ready', async () => started.isReady());
  return { invalidator: started, registry, prefix };
}

const range = (n: number, from = 1): number[] => Array.from({ length: n }, (_, i) => from + i);
const upsert = (table: string, row: Record<string, unknown>, key: Record<string, unknown>): ChangeEvent =>
  changeEvent('c', table, { key, before: null, after: row });

describe('Redis target on a Redis Cluster', () => {
  it('the cluster helper spreads the hash slots over three masters', async () => {
    expect(cluster.nodes).toHaveLength(3);
    expect(cluster.nodes.map((node) => node.slots)).toEqual([
      [0, 5460],
      [5461, 10921],
      [10922, 16383],
    ]);
    const info = String(await masters[2]?.call('CLUSTER', 'INFO'));
    expect(info).toMatch(/^cluster_state:ok/m);
    expect(client.nodes('master')).toHaveLength(3);
  });

  it('purges a batch of keys spread over every master in one handle call; other keys survive', async () => {
    const { invalidator, prefix } = await startInline(
      'rc_keys',
      [{ table: 'items', redis: { keys: ['item:{id}', 'item:{id}:json'] } }],
      // Small batches: the UNLINKs of one call go to many slots and nodes at once.
      { redisBatchSize: 7 },
    );
    try {
      const ids = range(300);
      const purged = ids.flatMap((id) => [`${prefix}item:${id}`, `${prefix}item:${id}:json`]);
      const neighbours = [
        ...range(50, 301).map((id) => `${prefix}item:${id}`),
        ...ids.slice(0, 50).map((id) => `${prefix}item:${id}:html`),
        `${prefix}item:1x`,
      ];
      await setAll([...purged, ...neighbours]);
      const before = await keysPerMaster(prefix);
      for (const onMaster of before) expect(onMaster.length).toBeGreaterThan(50);

      await invalidator.handle(ids.map((id) => upsert('items', { id }, { id })));

      expect(await existing(purged)).toEqual([]);
      expect(await existing(neighbours)).toEqual(neighbours);
      expect((await keysPerMaster(prefix)).flat().sort()).toEqual([...neighbours].sort());
    } finally {
      await invalidator.stop();
    }
  });

  it.each([
    ['3 rows', 3],
    ['6 rows', 6],
  ])(
    'patterns (%s) purge matching keys on every master, values glob-escaped; neighbours survive',
    async (_, names) => {
      const { invalidator, prefix } = await startInline(`rc_pat${names}`, [
        { table: 'users', redis: { patterns: ['user:{name}:*'] } },
      ]);
      try {
        // Hostile values first: unescaped, `a*` would also match user:ab:… and `[ab]?` user:ax:….
        const all = ['a*', '[ab]?', 'alice', 'b\\', 'c?', 'd]'];
        const purgedNames = all.slice(0, names);
        const matching = purgedNames.flatMap((name) => range(40).map((i) => `${prefix}user:${name}:${i}`));
        const neighbours = [
          ...['ab', 'abc', 'ax', 'b1', 'alic', 'alicex', 'bx', 'cc', 'd'].flatMap((name) =>
            range(5).map((i) => `${prefix}user:${name}:${i}`),
          ),
          ...all.slice(names).map((name) => `${prefix}user:${name}:1`),
          `${prefix}users:alice:1`,
          `${prefix}user:alice`,
          `${prefix}user:a*`,
        ];
        await setAll([...matching, ...neighbours]);
        // Every purged name has matching keys on every master.
        for (const name of purgedNames) {
          const owners = new Set(
            matching.filter((key) => key.startsWith(`${prefix}user:${name}:`)).map(masterOf),
          );
          expect(owners).toEqual(new Set([0, 1, 2]));
        }

        await invalidator.handle(purgedNames.map((name) => upsert('users', { name }, { name })));

        expect(await existing(matching)).toEqual([]);
        expect(await existing(neighbours)).toEqual(neighbours);
      } finally {
        await invalidator.stop();
      }
    },
  );

  it('tags: the members of a tag set are purged from other slots and masters, then removed from the set', async () => {
    const { invalidator, prefix } = await startInline(
      'rc_tags',
      [{ table: 'posts', on: ['insert', 'update', 'delete'], redis: { tags: ['post-{id}'] } }],
      // Several SSCAN pages.
      { redisScanCount: 25, redisBatchSize: 10 },
    );
    try {
      const tagSet = `${prefix}tag:post-1`;
      // The prefix is random: a member that happens to hash to the tag set's own slot (about one run
      // in eighty) is skipped, so every member is purged from another slot than the set's.
      const members = range(240)
        .map((i) => `page:${i}`)
        .filter((member) => calculateSlot(prefix + member) !== calculateSlot(tagSet))
        .slice(0, 200);
      const otherMembers = range(20).map((i) => `other:${i}`);
      await client.sadd(tagSet, ...members);
      await client.sadd(`${prefix}tag:post-2`, ...otherMembers);
      await setAll([...members, ...otherMembers].map((member) => prefix + member));
      const owners = new Set(members.map((member) => masterOf(prefix + member)));
      expect(owners).toEqual(new Set([0, 1, 2]));
      expect(members.filter((member) => calculateSlot(prefix + member) === calculateSlot(tagSet))).toEqual(
        [],
      );

      await invalidator.handle([upsert('posts', { id: 1 }, { id: 1 })]);

      expect(await existing(members.map((member) => prefix + member))).toEqual([]);
      expect(await client.exists(tagSet)).toBe(0);
      expect(await existing(otherMembers.map((member) => prefix + member))).toHaveLength(20);
      expect(await client.scard(`${prefix}tag:post-2`)).toBe(20);
    } finally {
      await invalidator.stop();
    }
  });

  it('tags: a member re-registered while its tag is purged stays registered (members in other slots than the set)', async () => {
    const prefix = `${uniqueName('rc_tag_race')}:`;
    const setKey = `${prefix}tag:post-1`;
    const members = range(150).map((i) => `page:${i}`);
    await client.sadd(setKey, ...members);
    await setAll(members.map((member) => prefix + member));
    // The application refills each page right after it is deleted and registers it again.
    const subscribers = masters.map((master) => master.duplicate());
    const refilled = new Set<string>();
    const refills: Array<Promise<unknown>> = [];
    for (const master of masters) await master.config('SET', 'notify-keyspace-events', 'Eg');
    const purger = new RedisPurger(
      new Cluster(cluster.nodes.map(({ port }) => ({ host: '127.0.0.1', port }))),
      {
        keyPrefix: prefix,
        batchSize: 20,
        scanCount: 20,
      },
    );
    try {
      for (const subscriber of subscribers) {
        // Subscribe only once the connection passed its ready check: a PSUBSCRIBE sent earlier puts
        // it in subscriber mode before ioredis' INFO, which then fails and drops the connection.
        await subscriber.ping();
        await subscriber.psubscribe('__keyevent@*__:del');
        subscriber.on('pmessage', (_pattern: string, _channel: string, key: string) => {
          if (!key.startsWith(`${prefix}page:`) || refilled.has(key)) return;
          refilled.add(key);
          refills.push(client.set(key, 'fresh').then(() => client.sadd(setKey, key.slice(prefix.length))));
        });
      }
      await waitFor(
        'the purger client to load the topology',
        async () => purger.notReadyReason() === undefined,
      );
      const targets = emptyTargets();
      targets.redis.tags.push('post-1');
      await purger.purge(targets, { signal: new AbortController().signal });
      await waitFor('every refill', async () => refilled.size === members.length, { timeoutMs: 10_000 });
      await Promise.all(refills);
      const registered = new Set(await client.smembers(setKey));
      expect(members.filter((member) => !registered.has(member))).toEqual([]);
      expect(await client.exists(tagJournalKey(setKey, prefix))).toBe(0);
    } finally {
      for (const master of masters) await master.config('SET', 'notify-keyspace-events', '');
      for (const subscriber of subscribers) subscriber.disconnect();
      await purger.close();
    }
  });

  it('tags: members a purge left in the journal (it died between its steps) are purged by the next purge of the tag', async () => {
    const { invalidator, prefix } = await startInline('rc_tag_journal', [
      { table: 'posts', on: ['insert', 'update', 'delete'], redis: { tags: ['post-{id}'] } },
    ]);
    try {
      const setKey = `${prefix}tag:post-1`;
      const journal = tagJournalKey(setKey, prefix);
      expect(calculateSlot(journal)).toBe(calculateSlot(setKey));
      const orphans = range(30).map((i) => `orphan:${i}`);
      const members = range(30).map((i) => `page:${i}`);
      await client.sadd(journal, ...orphans);
      await client.sadd(setKey, ...members);
      await setAll([...orphans, ...members].map((member) => prefix + member));
      expect(new Set(orphans.map((member) => masterOf(prefix + member)))).toEqual(new Set([0, 1, 2]));

      await invalidator.handle([upsert('posts', { id: 1 }, { id: 1 })]);

      expect(await existing([...orphans, ...members].map((member) => prefix + member))).toEqual([]);
      expect(await client.exists(journal, setKey)).toBe(0);
    } finally {
      await invalidator.stop();
    }
  });

  it('patterns: concurrent batches share sweeps of every master; keys written during a running sweep are purged', async () => {
    const prefix = `${uniqueName('rc_sweep')}:`;
    const filler = range(30_000).map((i) => `${prefix}filler:${i}`);
    for (let i = 0; i < filler.length; i += 1_000) await setAll(filler.slice(i, i + 1_000));
    const purger = new RedisPurger(
      new Cluster(cluster.nodes.map(({ port }) => ({ host: '127.0.0.1', port }))),
      {
        keyPrefix: prefix,
        batchSize: 100,
        scanCount: 100,
      },
    );
    const scans = async (): Promise<number> => {
      const infos = await Promise.all(masters.map((master) => master.info('commandstats')));
      return infos.reduce((sum, info) => sum + Number(/^cmdstat_scan:calls=(\d+)/m.exec(info)?.[1] ?? 0), 0);
    };
    const purge = (pattern: string): Promise<unknown> => {
      const targets = emptyTargets();
      targets.redis.patterns.push(pattern);
      return purger.purge(targets, { signal: new AbortController().signal });
    };
    try {
      await waitFor(
        'the purger client to load the topology',
        async () => purger.notReadyReason() === undefined,
      );
      let before = await scans();
      await purge('nothing:*');
      const perPass = (await scans()) - before;
      expect(perPass).toBeGreaterThan(30);

      const names = range(10).map((i) => `u${i}`);
      const matching = names.flatMap((name) => range(30).map((i) => `${prefix}user:${name}:${i}`));
      const neighbours = names.map((name) => `${prefix}user:${name}x:1`);
      await setAll([...matching, ...neighbours]);
      before = await scans();
      const first = purge(`user:${names[0] ?? ''}:*`);
      await waitFor('the first sweep to be under way', async () => (await scans()) - before > 10, {
        timeoutMs: 10_000,
        intervalMs: 5,
      });
      // Written while that sweep runs, on every master: its cursor may have passed some of them.
      const late = range(600).map((i) => `${prefix}late:${i}`);
      await setAll(late);
      await Promise.all([first, purge('late:*'), ...names.slice(1).map((name) => purge(`user:${name}:*`))]);
      const passes = ((await scans()) - before) / perPass;
      expect(passes).toBeLessThanOrEqual(2.5);
      expect(await existing([...matching, ...late])).toEqual([]);
      expect(await existing(neighbours)).toEqual(neighbours);
    } finally {
      await purger.close();
    }
  });

  it('write-behind echoes: per key on its own master, entries at the committed version or newer stay', async () => {
    const { invalidator, registry, prefix } = await startInline('rc_echo', [
      { table: 'items', redis: { keys: ['item:{id}'] } },
    ]);
    const echo = (id: number, version: string): ChangeEvent => {
      const event = upsert('items', { id, _walpurge_version: version }, { id });
      return { ...event, source: { ...event.source, origin: 'walpurge_write_behind' } };
    };
    try {
      const ids = range(60);
      // Even ids hold the version being echoed (the application's own write), odd ids an older one.
      await Promise.all(
        ids.map((id) => client.hset(`${prefix}item:${id}`, 'v', 'x', 'wv', id % 2 === 0 ? '700' : '600')),
      );
      const kept = ids.filter((id) => id % 2 === 0).map((id) => `${prefix}item:${id}`);
      const stale = ids.filter((id) => id % 2 === 1).map((id) => `${prefix}item:${id}`);
      expect(new Set(kept.map(masterOf))).toEqual(new Set([0, 1, 2]));
      expect(new Set(stale.map(masterOf))).toEqual(new Set([0, 1, 2]));

      await invalidator.handle(ids.map((id) => echo(id, '700')));

      expect(await existing(kept)).toEqual(kept);
      expect(await existing(stale)).toEqual([]);
      expect(await metricValue(registry, 'walpurge_invalidator_echo_kept_total', { target: 'redis' })).toBe(
        kept.length,
      );
    } finally {
      await invalidator.stop();
    }
  });

  it('namespaces: each version key is bumped on its own master, to the highest commit LSN of the batch, never backwards', async () => {
    const { invalidator, registry, prefix } = await startInline('rc_ns', [
      { table: 'orders', on: ['insert', 'update', 'delete'], redis: { namespaces: ['user:{user_id}'] } },
    ]);
    const order = (id: number, userId: number): ChangeEvent =>
      upsert('orders', { id, user_id: userId }, { id });
    try {
      const users = range(30);
      const versionKeys = users.map((user) => `${prefix}ns:user:${user}`);
      expect(new Set(versionKeys.map(masterOf))).toEqual(new Set([0, 1, 2]));
      const first = users.map((user) => order(user, user));
      const second = users.map((user) => order(100 + user, user));
      await invalidator.handle([...first, ...second]);
      const expected = second.map((event) => namespaceVersion(event.source.lsn));
      const stored = await Promise.all(versionKeys.map((key) => client.get(key)));
      // `<fresh epoch>:<commit LSN>`
      expect(stored.map((value) => value?.split(':')[1])).toEqual(expected);
      // The older events again (a replay after a crash): versions stay where they are.
      await invalidator.handle(first);
      expect(await Promise.all(versionKeys.map((key) => client.get(key)))).toEqual(stored);
      expect(
        await metricValue(registry, 'walpurge_invalidator_purges_total', {
          target: 'redis',
          kind: 'namespaces',
          outcome: 'success',
        }),
      ).toBe(users.length * 2);
      // The replay changed no version (the batch's two events per user were one bump, to the newer LSN).
      expect(
        await metricValue(registry, 'walpurge_invalidator_namespace_bumps_already_newer_total', {
          target: 'redis',
        }),
      ).toBe(users.length);
    } finally {
      await invalidator.stop();
    }
  });

  it('a pattern purge right after start waits for the topology instead of scanning only the seed node', async () => {
    const prefix = `${uniqueName('rc_early')}:`;
    const matching = range(60).map((i) => `${prefix}user:bob:${i}`);
    const neighbour = `${prefix}user:bobby:1`;
    await setAll([...matching, neighbour]);
    expect(new Set(matching.map(masterOf))).toEqual(new Set([0, 1, 2]));
    const { invalidator } = await startInline(
      'rc_early',
      [{ table: 'users', redis: { patterns: ['user:{name}:*'] } }],
      {},
      { prefix, early: true },
    );
    try {
      // No wait for readiness: the inline transport may hand over a batch at once.
      await invalidator.handle([upsert('users', { name: 'bob' }, { name: 'bob' })]);

      expect(await existing(matching)).toEqual([]);
      expect(await existing([neighbour])).toEqual([neighbour]);
    } finally {
      await invalidator.stop();
    }
  });

  it('a master whose connection ended is reconnected for the scan, not skipped', async () => {
    const prefix = `${uniqueName('rc_lost')}:`;
    const own = new Cluster([{ host: '127.0.0.1', port: cluster.nodes[0]?.port ?? 0 }]);
    const purger = new RedisPurger(own, { keyPrefix: prefix, batchSize: 50, scanCount: 100 });
    try {
      await waitFor('the purger client to load the topology', async () => own.status === 'ready');
      const matching = range(60).map((i) => `${prefix}user:eve:${i}`);
      await setAll(matching);
      // ioredis does not reconnect a cluster node by itself: it drops out of nodes('master') until
      // a MOVED reply makes the client reload the slot map.
      const lost = own.nodes('master').find((node) => node.options.port === cluster.nodes[1]?.port);
      lost?.disconnect();
      await waitFor('the node to leave the pool', async () => own.nodes('master').length === 2);

      const targets = emptyTargets();
      targets.redis.patterns.push('user:eve:*');
      await purger.purge(targets, { signal: new AbortController().signal });

      expect(await existing(matching)).toEqual([]);
    } finally {
      await purger.close();
    }
  });

  it('while no cluster node is reachable a pattern purge never succeeds: it waits, then fails retriably', async () => {
    const own = new Cluster([{ host: '127.0.0.1', port: await freePort() }], {
      clusterRetryStrategy: () => 50,
    });
    own.on('error', () => {});
    const purger = new RedisPurger(own, {
      keyPrefix: 'rc_down:',
      batchSize: 50,
      scanCount: 100,
      clusterReadyTimeoutMs: 300,
    });
    try {
      const targets = emptyTargets();
      targets.redis.patterns.push('user:*');
      const error = await purger.purge(targets, { signal: new AbortController().signal }).then(
        () => 'acknowledged',
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(WalpurgeError);
      expect(String(error)).toMatch(/Redis Cluster: not ready after 300 ms/);
      expect(isRetriable(error)).toBe(true);

      // An abort (graceful stop ran out of time) ends the wait at once.
      const aborter = new AbortController();
      const aborted = purger.purge(targets, { signal: aborter.signal }).catch((e: unknown) => e);
      aborter.abort(new Error('stopping'));
      expect(String(await aborted)).toContain('stopping');
    } finally {
      await purger.close();
    }
  });
});
