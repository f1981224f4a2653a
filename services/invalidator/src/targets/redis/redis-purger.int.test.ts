import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { WalpurgeConfig } from '@walpurge/config';
import { createMetricsRegistry, ErrorCode, isRetriable, WalpurgeError } from '@walpurge/core';
import type { ChangeEvent } from '@walpurge/protocol';
import { emptyTargets, type PurgeTargets } from '@walpurge/rules';
import { SpanStatusCode } from '@opentelemetry/api';
import {
  freePort,
  installInMemoryTracing,
  startLocalRedis,
  uniqueName,
  waitFor,
  type LocalRedis,
} from '@walpurge/testing';
import { changeEvent, deleteKeys, logger } from '../../../test/harness.js';
import { createInvalidator } from '../../create-invalidator.js';
import { PatternSweeper, type PatternSweeperOptions } from './pattern-sweeper.js';
import { RedisPurger } from './redis-purger.js';

/**
 * The Redis target's tag and pattern purges on a real Redis. Tests that count SCAN commands
 * (INFO commandstats) run on a Redis of their own: the shared one serves other suites in parallel.
 */
const services = inject('services');
let redis: Redis;
let own: LocalRedis;
let ownClient: Redis;
const prefixes: string[] = [];

beforeAll(async () => {
  redis = new Redis(services.redisUrl);
  own = await startLocalRedis();
  ownClient = new Redis(own.url);
  await Promise.all([redis.ping(), ownClient.ping()]);
});
afterAll(async () => {
  for (const prefix of prefixes) await deleteKeys(redis, prefix);
  redis?.disconnect();
  ownClient?.disconnect();
  await own?.stop();
});

function newPrefix(label: string): string {
  const prefix = `${uniqueName(label)}:`;
  prefixes.push(prefix);
  return prefix;
}

const range = (n: number, from = 1): number[] => Array.from({ length: n }, (_, i) => from + i);
const signal = (): AbortSignal => new AbortController().signal;

function targets(fill: (redis: PurgeTargets['redis']) => void): PurgeTargets {
  const t = emptyTargets();
  fill(t.redis);
  return t;
}

/** How many SCAN commands the server has run so far. */
async function scanCalls(client: Redis): Promise<number> {
  const info = await client.info('commandstats');
  return Number(/^cmdstat_scan:calls=(\d+)/m.exec(info)?.[1] ?? 0);
}

/** `count` keys under `prefix` in pipelined MSETs: the keyspace a pattern sweep must walk. */
async function fill(client: Redis, prefix: string, count: number): Promise<void> {
  const pipeline = client.pipeline();
  for (let i = 0; i < count; i += 1000) {
    const args: string[] = [];
    for (let j = i; j < Math.min(count, i + 1000); j++) args.push(`${prefix}${j}`, 'v');
    pipeline.mset(...args);
  }
  await pipeline.exec();
}

describe('tag purge', () => {
  it('a member the application re-adds while its tag is purged stays registered (UNLINK and SREM are one step)', async () => {
    const p = newPrefix('tag_race');
    const setKey = `${p}tag:post-1`;
    const members = range(300).map((i) => `page:${i}`);
    await redis.sadd(setKey, ...members);
    await redis.mset(...members.flatMap((m) => [p + m, 'stale']));
    // The application refills a page right after it is deleted (a reader missed the cache) and
    // registers it in the tag set again, as @walpurge/client does: SET then SADD.
    const app = new Redis(services.redisUrl);
    const subscriber = new Redis(services.redisUrl);
    const previous = String(((await redis.config('GET', 'notify-keyspace-events')) as unknown[])[1] ?? '');
    await redis.config('SET', 'notify-keyspace-events', `${previous}Eg`);
    const refilled = new Set<string>();
    const refills: Array<Promise<unknown>> = [];
    try {
      await subscriber.ping();
      await subscriber.psubscribe('__keyevent@*__:del');
      subscriber.on('pmessage', (_pattern: string, _channel: string, key: string) => {
        if (!key.startsWith(`${p}page:`) || refilled.has(key)) return;
        refilled.add(key);
        refills.push(app.multi().set(key, 'fresh').sadd(setKey, key.slice(p.length)).exec());
      });
      const purger = new RedisPurger(new Redis(services.redisUrl), {
        keyPrefix: p,
        batchSize: 20,
        scanCount: 20,
      });
      try {
        await purger.purge(
          targets((r) => r.tags.push('post-1')),
          { signal: signal() },
        );
      } finally {
        await purger.close();
      }
      await waitFor('every refill', async () => refilled.size === members.length, { timeoutMs: 10_000 });
      await Promise.all(refills);
      // Every cached page is registered in the tag set, so the next purge of the tag reaches it.
      const cached = members.filter((m) => refilled.has(p + m));
      const registered = new Set(await redis.smembers(setKey));
      expect(cached.filter((m) => !registered.has(m))).toEqual([]);
    } finally {
      await redis.config('SET', 'notify-keyspace-events', previous);
      subscriber.disconnect();
      app.disconnect();
    }
  });

  it('WRONGTYPE on one tag key: every other key, tag and pattern is purged, then a non-retriable error', async () => {
    const p = newPrefix('tag_wrongtype');
    await redis.set(`${p}tag:broken`, 'a string, not a set');
    await redis.sadd(`${p}tag:good`, 'page:1', 'page:2');
    await redis.mset(
      `${p}page:1`,
      'x',
      `${p}page:2`,
      'x',
      `${p}key:1`,
      'x',
      `${p}pat:1`,
      'x',
      `${p}keep`,
      'x',
    );
    // Traced: the refused tag marks the walpurge.redis.tags span failed, the others not.
    const tracing = installInMemoryTracing();
    const purger = new RedisPurger(new Redis(services.redisUrl), {
      keyPrefix: p,
      batchSize: 10,
      scanCount: 10,
    });
    try {
      const error = await purger
        .purge(
          targets((r) => {
            r.keys.push('key:1');
            r.tags.push('broken', 'good');
            r.patterns.push('pat:*');
          }),
          { signal: signal() },
        )
        .then(
          () => 'resolved',
          (e: unknown) => e,
        );
      expect(String(error)).toMatch(/tag set .*tag:broken holds another type/);
      expect(isRetriable(error)).toBe(false);
      expect(await redis.exists(`${p}page:1`, `${p}page:2`, `${p}key:1`, `${p}pat:1`, `${p}tag:good`)).toBe(
        0,
      );
      expect(await redis.get(`${p}tag:broken`)).toBe('a string, not a set');
      expect(await redis.exists(`${p}keep`)).toBe(1);
      const spans = tracing.spans();
      const tagsSpan = spans.find((span) => span.name === 'walpurge.redis.tags');
      expect(tagsSpan?.status).toEqual({
        code: SpanStatusCode.ERROR,
        message: `not a tag set: ${p}tag:broken`,
      });
      expect(tagsSpan?.events.map((event) => event.name)).toEqual(['exception']);
      expect(spans.find((span) => span.name === 'walpurge.redis.keys')?.status.code).toBe(
        SpanStatusCode.UNSET,
      );
    } finally {
      await purger.close();
      await tracing.uninstall();
    }
  });
  it('an abort before every tag was purged ends the walpurge.redis.tags span failed', async () => {
    const p = newPrefix('tag_abort');
    await redis.sadd(`${p}tag:one`, 'page:1');
    const tracing = installInMemoryTracing();
    const purger = new RedisPurger(new Redis(services.redisUrl), {
      keyPrefix: p,
      batchSize: 10,
      scanCount: 10,
    });
    try {
      const aborted = new AbortController();
      aborted.abort(new Error('stopping'));
      await expect(
        purger.purge(
          targets((r) => r.tags.push('one')),
          { signal: aborted.signal },
        ),
      ).rejects.toThrow('stopping');
      expect(tracing.spans().find((span) => span.name === 'walpurge.redis.tags')?.status).toEqual({
        code: SpanStatusCode.ERROR,
        message: 'aborted before every tag was purged',
      });
      expect(await redis.scard(`${p}tag:one`)).toBe(1);
    } finally {
      await purger.close();
      await tracing.uninstall();
    }
  });

  it('a tag set larger than Lua can unpack at once is purged with large batch and scan settings', async () => {
    const p = newPrefix('tag_big_page');
    const members = range(9_000).map((i) => `page:${i}`);
    for (let i = 0; i < members.length; i += 1000) {
      const part = members.slice(i, i + 1000);
      await redis.sadd(`${p}tag:big`, ...part);
      await redis.mset(...part.flatMap((m) => [p + m, 'stale']));
    }
    // Both settings at 10,000: one SSCAN page of 9,000 members, one script call per page unless
    // the script's own batch is bounded (Lua's unpack stops at about 8,000 values).
    const purger = new RedisPurger(new Redis(services.redisUrl), {
      keyPrefix: p,
      batchSize: 10_000,
      scanCount: 10_000,
    });
    try {
      await purger.purge(
        targets((r) => r.tags.push('big')),
        { signal: signal() },
      );
      expect(await redis.exists(...members.slice(0, 500).map((m) => p + m))).toBe(0);
      expect(await redis.scard(`${p}tag:big`)).toBe(0);
    } finally {
      await purger.close();
    }
  });
});

describe('pattern purge', () => {
  it('patterns whose common prefix ends inside a surrogate pair (two emoji) are both purged', async () => {
    const p = newPrefix('pat_emoji');
    await redis.mset(`${p}food:🍕:1`, 'x', `${p}food:🍔:1`, 'x', `${p}keep`, 'x');
    const purger = new RedisPurger(new Redis(services.redisUrl), {
      keyPrefix: p,
      batchSize: 10,
      scanCount: 100,
    });
    try {
      await purger.purge(
        targets((r) => r.patterns.push('food:🍕:*', 'food:🍔:*')),
        { signal: signal() },
      );
      expect(await redis.exists(`${p}food:🍕:1`, `${p}food:🍔:1`)).toBe(0);
      expect(await redis.exists(`${p}keep`)).toBe(1);
    } finally {
      await purger.close();
    }
  });

  it('concurrent batches share keyspace sweeps instead of one SCAN pass each', async () => {
    const p = newPrefix('sweep_share');
    await fill(ownClient, `${p}filler:`, 20_000);
    const names = range(8).map((i) => `u${i}`);
    await ownClient.mset(...names.flatMap((n) => [`${p}user:${n}:1`, 'x', `${p}user:${n}x:1`, 'x']));
    const purger = new RedisPurger(new Redis(own.url), { keyPrefix: p, batchSize: 100, scanCount: 1000 });
    try {
      // One SCAN pass over the keyspace: the number of SCAN calls a single sweep costs.
      let before = await scanCalls(ownClient);
      await purger.purge(
        targets((r) => r.patterns.push('nothing:*')),
        { signal: signal() },
      );
      const perPass = (await scanCalls(ownClient)) - before;
      expect(perPass).toBeGreaterThan(5);

      before = await scanCalls(ownClient);
      await Promise.all(
        names.map((n) =>
          purger.purge(
            targets((r) => r.patterns.push(`user:${n}:*`)),
            { signal: signal() },
          ),
        ),
      );
      const passes = ((await scanCalls(ownClient)) - before) / perPass;
      // At most the sweep the first batch started plus one for every batch that arrived meanwhile.
      expect(passes).toBeLessThanOrEqual(2.5);
      expect(await ownClient.exists(...names.map((n) => `${p}user:${n}:1`))).toBe(0);
      expect(await ownClient.exists(...names.map((n) => `${p}user:${n}x:1`))).toBe(names.length);
    } finally {
      await purger.close();
      await deleteKeys(ownClient, p);
    }
  });

  it('a key written before its pattern registers is purged even when a sweep is already running', async () => {
    const p = newPrefix('sweep_running');
    await fill(ownClient, `${p}filler:`, 30_000);
    const purger = new RedisPurger(new Redis(own.url), { keyPrefix: p, batchSize: 100, scanCount: 50 });
    try {
      const before = await scanCalls(ownClient);
      const first = purger.purge(
        targets((r) => r.patterns.push('a:*')),
        { signal: signal() },
      );
      await waitFor(
        'the first sweep to be under way',
        async () => (await scanCalls(ownClient)) - before > 20,
        {
          timeoutMs: 10_000,
          intervalMs: 5,
        },
      );
      // Spread over the whole hash table, so the running sweep's cursor has passed some of them.
      const late = range(2_000).map((i) => `${p}b:${i}`);
      await ownClient.mset(...late.flatMap((k) => [k, 'x']));
      await ownClient.mset(`${p}bb:1`, 'x', `${p}c:1`, 'x');
      const second = purger.purge(
        targets((r) => r.patterns.push('b:*')),
        { signal: signal() },
      );
      await Promise.all([first, second]);
      const left = await ownClient.exists(...late);
      expect(left).toBe(0);
      expect(await ownClient.exists(`${p}bb:1`, `${p}c:1`)).toBe(2);
    } finally {
      await purger.close();
      await deleteKeys(ownClient, p);
    }
  });
});

describe('PatternSweeper', () => {
  const sweeperOn = (client: Redis, options: Partial<PatternSweeperOptions> = {}): PatternSweeper =>
    new PatternSweeper(
      async () => [client],
      async (keys) => void (await client.unlink(...keys)),
      100,
      { scanCount: 100, minWindowMs: 0, windowFactor: 1, maxWindowMs: 2_000, ...options },
    );

  it('reports the keys a sweep walks (DBSIZE), not only the few the server-side MATCH returns', async () => {
    const p = newPrefix('sweep_walked');
    await fill(ownClient, `${p}unrelated:`, 5_000);
    const walked: number[] = [];
    const sweeper = new PatternSweeper(
      async () => [ownClient],
      async (keys) => void (await ownClient.unlink(...keys)),
      100,
      { scanCount: 100, minWindowMs: 0, windowFactor: 1, maxWindowMs: 2_000 },
      { sweepDone: () => undefined, keysScanned: (n) => walked.push(n), keysUnlinked: () => undefined },
    );
    try {
      // No key lives under the pattern's prefix: MATCH returns nothing, yet SCAN walks them all.
      await sweeper.sweep([`${p}absent:*`], signal());
      expect(walked.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(5_000);
    } finally {
      sweeper.close();
      await deleteKeys(ownClient, p);
    }
  });

  it('a failed sweep rejects every batch waiting for it with a retriable error', async () => {
    const down = new Redis({ port: await freePort(), maxRetriesPerRequest: 1, lazyConnect: true });
    down.on('error', () => undefined);
    const sweeper = sweeperOn(down);
    try {
      const results = await Promise.all(
        ['a:*', 'b:*', 'c:*'].map((pattern) =>
          sweeper.sweep([pattern], signal()).then(
            () => 'resolved',
            (e: unknown) => e,
          ),
        ),
      );
      for (const error of results) {
        expect(error).toBeInstanceOf(WalpurgeError);
        expect((error as WalpurgeError).code).toBe(ErrorCode.RedisUnavailable);
        expect(isRetriable(error)).toBe(true);
      }
    } finally {
      sweeper.close();
      down.disconnect();
    }
  });

  it('an aborted batch stops waiting at once; the others are still served', async () => {
    const p = newPrefix('sweep_abort');
    await fill(ownClient, `${p}filler:`, 20_000);
    await ownClient.mset(`${p}a:1`, 'x', `${p}b:1`, 'x');
    const sweeper = sweeperOn(ownClient, { scanCount: 50 });
    try {
      const aborter = new AbortController();
      const aborted = sweeper.sweep([`${p}a:*`], aborter.signal).then(
        () => 'resolved',
        (e: unknown) => e,
      );
      const served = sweeper.sweep([`${p}b:*`], signal());
      aborter.abort(new Error('stopping'));
      expect(String(await aborted)).toContain('stopping');
      await served;
      expect(await ownClient.exists(`${p}b:1`)).toBe(0);
    } finally {
      sweeper.close();
      await deleteKeys(ownClient, p);
    }
  });

  it('close rejects waiting batches retriably (they are replayed) and refuses new ones', async () => {
    const p = newPrefix('sweep_close');
    await fill(ownClient, `${p}filler:`, 20_000);
    const sweeper = sweeperOn(ownClient, { scanCount: 20 });
    const running = sweeper.sweep([`${p}a:*`], signal()).then(
      () => 'resolved',
      (e: unknown) => e,
    );
    const before = await scanCalls(ownClient);
    await waitFor('the sweep to be under way', async () => (await scanCalls(ownClient)) > before, {
      timeoutMs: 10_000,
      intervalMs: 5,
    });
    const waiting = sweeper.sweep([`${p}b:*`], signal()).then(
      () => 'resolved',
      (e: unknown) => e,
    );
    sweeper.close();
    for (const error of [await running, await waiting]) {
      expect(String(error)).toMatch(/stopping/);
      expect(isRetriable(error)).toBe(true);
    }
    await expect(sweeper.sweep([`${p}c:*`], signal())).rejects.toThrow(/stopping/);
    await deleteKeys(ownClient, p);
  });

  it('the pause between sweeps follows the last sweep duration, within its bounds', async () => {
    const p = newPrefix('sweep_window');
    await fill(ownClient, `${p}filler:`, 20_000);
    const sweeper = sweeperOn(ownClient, {
      scanCount: 50,
      windowFactor: 3,
      minWindowMs: 1,
      maxWindowMs: 60_000,
    });
    const capped = sweeperOn(ownClient, { scanCount: 50, windowFactor: 1_000, maxWindowMs: 7 });
    try {
      expect(sweeper.windowMs()).toBe(1);
      const started = performance.now();
      await sweeper.sweep([`${p}x:*`], signal());
      const elapsed = performance.now() - started;
      // 3 × the sweep's own duration, which the caller's wait includes.
      expect(sweeper.windowMs()).toBeGreaterThan(1);
      expect(sweeper.windowMs()).toBeLessThanOrEqual(3 * elapsed);
      await capped.sweep([`${p}x:*`], signal());
      expect(capped.windowMs()).toBe(7);
    } finally {
      sweeper.close();
      capped.close();
      await deleteKeys(ownClient, p);
    }
  });
});

describe('poison isolation', () => {
  it('one poison event among 32 pattern events costs O(log N) sweeps, not N; the others are purged', async () => {
    const p = newPrefix('bisect');
    await fill(ownClient, `${p}filler:`, 5_000);
    const names = range(32).map((i) => `n${i}`);
    await ownClient.mset(...names.flatMap((n) => [`${p}user:${n}:1`, 'x']));
    await ownClient.set(`${p}tag:user-n20`, 'not a set');
    const registry = createMetricsRegistry({ defaultMetrics: false });
    const config = WalpurgeConfig.parse({
      redis: { url: own.url, keyPrefix: p },
      invalidator: { retryInitialMs: 20, retryMaxMs: 200, redisScanCount: 1000 },
      rules: [
        {
          table: 'users',
          on: ['insert', 'update', 'delete'],
          redis: { patterns: ['user:{name}:*'], tags: ['user-{name}'] },
        },
      ],
    });
    const invalidator = createInvalidator({ config, logger, registry, consume: 'none' });
    await invalidator.start(signal());
    try {
      let before = await scanCalls(ownClient);
      await invalidator.handle([event('n0')]);
      const perPass = (await scanCalls(ownClient)) - before;
      expect(perPass).toBeGreaterThan(2);

      before = await scanCalls(ownClient);
      await invalidator.handle(names.map(event));
      const passes = (await scanCalls(ownClient)) - before;
      // 1 + 2·log2(32) = 11 attempts at most; one by one would be 33.
      expect(passes / perPass).toBeLessThanOrEqual(11.5);
      expect(await ownClient.exists(...names.map((n) => `${p}user:${n}:1`))).toBe(0);
    } finally {
      await invalidator.stop();
      await deleteKeys(ownClient, p);
    }
  });
});

function event(name: string): ChangeEvent {
  return changeEvent('c', 'users', { key: { name }, before: null, after: { name } });
}
