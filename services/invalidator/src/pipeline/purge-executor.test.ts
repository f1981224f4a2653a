import { describe, expect, it } from 'vitest';
import { Rule } from '@walpurge/config';
import { createLogger, createMetricsRegistry, ErrorCode, WalpurgeError } from '@walpurge/core';
import type { ChangeEvent } from '@walpurge/protocol';
import { compileRules, type PurgeTargets } from '@walpurge/rules';
import { createInvalidatorMetrics } from '../metrics.js';
import { OTHERS_PURGED, type PurgeContext, type Purger } from '../targets/purger.js';
import type { CdnEnqueuer } from '../cdn-lane/cdn-queue.js';
import { PurgeExecutor } from './purge-executor.js';

/** Records what was enqueued, in order with the purgers' log. */
function recordingQueue(log: string[]): CdnEnqueuer & { events: ChangeEvent[] } {
  const events: ChangeEvent[] = [];
  return {
    events,
    enqueue: async (batch) => {
      log.push(`enqueue:${batch.length}`);
      events.push(...batch);
    },
  };
}

const update = (id: number, commitTs = '2026-01-01T00:00:00Z'): ChangeEvent => ({
  v: 1,
  op: 'u',
  source: { db: 'd', schema: 'public', table: 'users', lsn: '0/1', xid: 1, commitTs, origin: null },
  key: { id },
  before: null,
  after: { id, email: `${id}@x` },
  unchanged: [],
});

class FakePurger implements Purger {
  calls: PurgeTargets[] = [];
  log: string[];
  constructor(
    readonly name: string,
    readonly stage: 'redis' | 'cdn',
    log: string[],
    private failures: Error[] = [],
  ) {
    this.log = log;
  }
  count(targets: PurgeTargets): number {
    return this.stage === 'redis' ? targets.redis.keys.length : targets.cdn.tags.length;
  }
  async purge(targets: PurgeTargets, _context: PurgeContext): Promise<void> {
    this.calls.push(targets);
    this.log.push(`${this.name}:start`);
    await new Promise((r) => setTimeout(r, 5));
    const failure = this.failures.shift();
    if (failure) throw failure;
    this.log.push(`${this.name}:done`);
  }
  async close(): Promise<void> {}
}

function setup(failures: Error[] = [], queueOf?: (log: string[]) => CdnEnqueuer) {
  const registry = createMetricsRegistry({ defaultMetrics: false });
  const metrics = createInvalidatorMetrics(registry);
  const rules = compileRules([
    Rule.parse({ table: 'users', redis: { keys: ['user:{id}', 'all'] }, cdn: { tags: ['users'] } }),
    Rule.parse({ table: 'sessions', redis: { keys: ['session:{id}'] } }),
  ]);
  const log: string[] = [];
  // The queue writes into the purgers' log, so the order of Redis purge and enqueue is observed.
  const queue = queueOf?.(log);
  const redis = new FakePurger('redis', 'redis', log, failures);
  const cdn = new FakePurger('cdn', 'cdn', log);
  const executor = new PurgeExecutor(
    rules,
    [cdn, redis],
    metrics,
    createLogger({ level: 'silent' }),
    { initialMs: 1, maxMs: 5, jitter: 0 },
    () => Date.parse('2026-01-01T00:00:01Z'),
    undefined,
    queue,
  );
  return { registry, redis, cdn, log, executor };
}

describe('PurgeExecutor', () => {
  it('coalesces duplicate entries of a batch and purges Redis before the CDN', async () => {
    const { redis, cdn, log, executor, registry } = setup();
    await executor.handle([update(1), update(2), update(1), update(1)], new AbortController().signal);
    expect(redis.calls).toHaveLength(1);
    expect(redis.calls[0]?.redis.keys).toEqual(['user:1', 'all', 'user:2']);
    expect(cdn.calls[0]?.cdn.tags).toEqual(['users']);
    expect(log).toEqual(['redis:start', 'redis:done', 'cdn:start', 'cdn:done']);
    const metrics = await registry.getMetricsAsJSON();
    // The counters the coalescing ratio is derived from in PromQL: 4 events × 3 entries → 4 distinct.
    const total = (name: string) => metrics.find((m) => m.name === name)?.values[0]?.value;
    expect(total('walpurge_invalidator_entries_planned_total')).toBe(12);
    expect(total('walpurge_invalidator_entries_sent_total')).toBe(4);
    const lag = metrics.find((m) => m.name === 'walpurge_invalidator_end_to_end_lag_seconds');
    expect(lag?.values.find((v) => (v as { metricName?: string }).metricName?.endsWith('_sum'))?.value).toBe(
      4,
    );
  });

  it('retries a retriable failure until it succeeds and counts outcomes', async () => {
    const { redis, executor, registry } = setup([new Error('ECONNREFUSED'), new Error('ECONNREFUSED')]);
    await executor.handle([update(1)], new AbortController().signal);
    expect(redis.calls).toHaveLength(3);
    const purges = (await registry.getMetricsAsJSON()).find(
      (m) => m.name === 'walpurge_invalidator_purges_total',
    );
    const value = (outcome: string) =>
      purges?.values.find((v) => v.labels['target'] === 'redis' && v.labels['outcome'] === outcome)?.value;
    expect(value('failure')).toBe(4);
    expect(value('success')).toBe(2);
  });

  it('rejects on a non-retriable failure and on abort, without touching the CDN', async () => {
    const { cdn, executor } = setup([
      new WalpurgeError(ErrorCode.PurgeFailed, 'bad request', { retriable: false }),
    ]);
    await expect(executor.handle([update(1)], new AbortController().signal)).rejects.toThrow('bad request');
    expect(cdn.calls).toHaveLength(0);
    const stuck = setup(Array.from({ length: 1000 }, () => new Error('down')));
    const abort = new AbortController();
    setTimeout(() => abort.abort(), 50);
    await expect(stuck.executor.handle([update(1)], abort.signal)).rejects.toThrow();
    expect(stuck.cdn.calls).toHaveLength(0);
  });

  it('with a CDN queue: Redis purges, then enqueues the events that have CDN targets, never calls the CDN', async () => {
    let queue: ReturnType<typeof recordingQueue> | undefined;
    const { cdn, executor, log } = setup([], (shared) => (queue = recordingQueue(shared)));
    const session = { ...update(9), source: { ...update(9).source, table: 'sessions' } };
    await executor.handle([update(1), session, update(2)], new AbortController().signal);
    expect(cdn.calls).toHaveLength(0);
    expect(queue?.events.map((event) => event.key)).toEqual([{ id: 1 }, { id: 2 }]);
    expect(log).toEqual(['redis:start', 'redis:done', 'enqueue:2']);
  });

  it('with a CDN queue: a single event refused at Redis after the rest was purged is still enqueued, then rethrown; a batch is not', async () => {
    const rejected = () =>
      new WalpurgeError(ErrorCode.PurgeFailed, 'WRONGTYPE', {
        retriable: false,
        details: { [OTHERS_PURGED]: true },
      });
    const singleQueue = recordingQueue([]);
    const one = setup([rejected()], () => singleQueue);
    await expect(one.executor.handle([update(1)], new AbortController().signal)).rejects.toThrow('WRONGTYPE');
    expect(singleQueue.events.map((event) => event.key)).toEqual([{ id: 1 }]);
    const batchQueue = recordingQueue([]);
    const batch = setup([rejected()], () => batchQueue);
    await expect(batch.executor.handle([update(1), update(2)], new AbortController().signal)).rejects.toThrow(
      'WRONGTYPE',
    );
    expect(batchQueue.events).toEqual([]);
  });

  it('with a CDN queue: any other refusal at Redis may have left stale entries, so the CDN purge is not enqueued', async () => {
    const queue = recordingQueue([]);
    const { executor } = setup(
      [new WalpurgeError(ErrorCode.PurgeFailed, 'ERR syntax error', { retriable: false })],
      () => queue,
    );
    await expect(executor.handle([update(1)], new AbortController().signal)).rejects.toThrow('syntax');
    expect(queue.events).toEqual([]);
  });
});
