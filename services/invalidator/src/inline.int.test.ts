import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { WalpurgeConfig } from '@walpurge/config';
import { createMetricsRegistry } from '@walpurge/core';
import { uniqueName, waitFor } from '@walpurge/testing';
import { changeEvent, deleteKeys, logger, metricValue } from '../test/harness.js';
import { TcpProxy } from '../test/tcp-proxy.js';
import { createInvalidator, type Invalidator } from './create-invalidator.js';

const services = inject('services');
let redis: Redis;
const prefixes: string[] = [];

beforeAll(() => {
  redis = new Redis(services.redisUrl);
});
afterAll(async () => {
  for (const prefix of prefixes) await deleteKeys(redis, prefix);
  redis?.disconnect();
});

/** The invalidator as the inline transport uses it: no Kafka, the listener calls `handle`. */
async function startInline(
  redisUrl: string,
): Promise<{ invalidator: Invalidator; prefix: string; registry: ReturnType<typeof createMetricsRegistry> }> {
  const prefix = `${uniqueName('inline')}:`;
  prefixes.push(prefix);
  const registry = createMetricsRegistry({ defaultMetrics: false });
  const config = WalpurgeConfig.parse({
    redis: { url: redisUrl, keyPrefix: prefix },
    invalidator: { retryInitialMs: 20, retryMaxMs: 200 },
    rules: [
      {
        table: 'posts',
        on: ['insert', 'update', 'delete'],
        redis: { keys: ['post:{id}'], tags: ['post-{id}'] },
      },
    ],
  });
  const invalidator = createInvalidator({ config, logger, registry, consume: 'none' });
  await invalidator.start(new AbortController().signal);
  return { invalidator, prefix, registry };
}

const post = (id: number) => changeEvent('c', 'posts', { key: { id }, before: null, after: { id } });

describe('invalidator with the inline transport', () => {
  it('a purge rejected for good does not stall replication: that event is logged and counted, the others are purged', async () => {
    const { invalidator, prefix, registry } = await startInline(services.redisUrl);
    try {
      await redis.mset(
        `${prefix}post:1`,
        'x',
        `${prefix}post:2`,
        'x',
        `${prefix}post:3`,
        'x',
        `${prefix}tag:post-2`,
        'not a set',
      );
      await invalidator.handle([post(1), post(2), post(3)]);
      expect(await redis.exists(`${prefix}post:1`, `${prefix}post:2`, `${prefix}post:3`)).toBe(0);
      expect(await redis.get(`${prefix}tag:post-2`)).toBe('not a set');
      expect(
        await metricValue(registry, 'walpurge_invalidator_rejected_events_total', { transport: 'inline' }),
      ).toBe(1);
    } finally {
      await invalidator.stop();
    }
  });

  it('readiness follows the cache Redis: not ready while it is unreachable, ready again once it is back', async () => {
    const target = new URL(services.redisUrl);
    const proxy = new TcpProxy(target.hostname, Number(target.port));
    await proxy.start();
    const { invalidator } = await startInline(`redis://127.0.0.1:${proxy.port}`);
    try {
      await waitFor('ready with Redis reachable', async () => invalidator.isReady(), { timeoutMs: 10_000 });
      await proxy.stop();
      await waitFor('not ready while Redis is down', async () => !invalidator.isReady(), {
        timeoutMs: 10_000,
      });
      expect(invalidator.notReadyReason()).toMatch(/cache Redis/);
      await proxy.start();
      await waitFor('ready again once Redis is back', async () => invalidator.isReady(), {
        timeoutMs: 30_000,
      });
      expect(invalidator.notReadyReason()).toBeUndefined();
    } finally {
      await invalidator.stop();
      await proxy.stop();
    }
    expect(invalidator.isReady()).toBe(false);
  });

  it('Redis down: handle retries until Redis is back and resolves only then; an abort rejects instead of acknowledging', async () => {
    const target = new URL(services.redisUrl);
    const proxy = new TcpProxy(target.hostname, Number(target.port));
    await proxy.start();
    const { invalidator, prefix, registry } = await startInline(`redis://127.0.0.1:${proxy.port}`);
    try {
      await proxy.stop();
      await redis.mset(`${prefix}post:1`, 'x', `${prefix}post:2`, 'x');
      let settled = false;
      const handled = invalidator.handle([post(1)]).finally(() => (settled = true));
      const aborter = new AbortController();
      const aborted = invalidator.handle([post(2)], aborter.signal).then(
        () => 'resolved',
        () => 'rejected',
      );
      const retries = () =>
        metricValue(registry, 'walpurge_invalidator_purge_retries_total', { target: 'redis' });
      await waitFor('retries while Redis is down', async () => (await retries()) >= 4, { timeoutMs: 30_000 });
      expect(settled).toBe(false);
      aborter.abort();
      expect(await aborted).toBe('rejected');

      await proxy.start();
      await handled;
      expect(await redis.exists(`${prefix}post:1`)).toBe(0);
      expect(await metricValue(registry, 'walpurge_invalidator_rejected_events_total')).toBe(0);
    } finally {
      await invalidator.stop();
      await proxy.stop();
    }
  });
});
