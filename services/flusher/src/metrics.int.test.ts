import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Registry } from '@walpurge/core';
import { startLocalRedis, waitFor, type LocalRedis } from '@walpurge/testing';
import { ITEMS_DDL, createFixture, metricValue } from './test-support/fixture.js';

/**
 * The flusher's metrics, read from the registry the ops server exports: queue depth, oldest pending
 * write age, writes accepted, rows flushed, coalescing ratio, flush latency and failures. A table
 * lock holds the first batch inside PostgreSQL, so the backlog can be observed while it exists.
 */
const services = inject('services');
let queueRedis: LocalRedis;

beforeAll(async () => {
  queueRedis = await startLocalRedis({ persistent: true });
});
afterAll(async () => {
  await queueRedis?.stop();
});

async function histogramCount(registry: Registry, name: string): Promise<number> {
  const metric = await registry.getSingleMetric(name)?.get();
  // Histogram values carry metricName (`…_bucket`, `…_sum`, `…_count`), absent from the generic type.
  const values = (metric?.values ?? []) as Array<{ metricName?: string; value: number }>;
  return values.find((v) => v.metricName === `${name}_count`)?.value ?? 0;
}

describe('flusher metrics', () => {
  it('export queue depth, oldest pending age, accepted/written/flushed rows, latency and failures', async () => {
    const f = await createFixture({
      databaseAdminUrl: services.databaseUrl,
      cacheRedisUrl: services.redisUrl,
      queueRedisUrl: queueRedis.url,
    });
    const locker = await f.pool.connect();
    try {
      await f.pool.query(ITEMS_DDL);
      const flusher = await f.startFlusher({ batchSize: 100, metricsIntervalMs: 100 });
      const { registry } = flusher;
      const value = (name: string, labels?: Record<string, string>) => metricValue(registry, name, labels);

      await locker.query('BEGIN');
      await locker.query('LOCK TABLE items IN ACCESS EXCLUSIVE MODE');
      // 20 rows × 5 writes each while the flusher cannot commit anything: 100 accepted writes.
      for (let round = 0; round < 5; round += 1) {
        await Promise.all(
          Array.from({ length: 20 }, (_, id) =>
            f.client.writeBehind('items', { id, value: `r${round}`, n: round }),
          ),
        );
      }
      await f.client.writeBehind('items', { id: 99, value: 'violates the check', n: -1 });
      await waitFor('backlog visible in the metrics', async () => {
        return (
          (await value('walpurge_flusher_pending_rows')) === 21 &&
          (await value('walpurge_flusher_queue_writes_accepted_total')) === 101 &&
          (await value('walpurge_flusher_oldest_pending_age_seconds')) > 0.2 &&
          (await value('walpurge_flusher_queue_jobs', { state: 'active' })) > 0
        );
      });
      expect(await value('walpurge_flusher_rows_flushed_total')).toBe(0);
      expect(await histogramCount(registry, 'walpurge_flusher_flush_duration_seconds')).toBe(0);

      await locker.query('COMMIT');
      await waitFor('backlog drained', async () => {
        return (
          (await value('walpurge_flusher_pending_rows')) === 1 && // the refused row stays, never dropped
          (await value('walpurge_flusher_queue_jobs', { state: 'failed' })) === 1 &&
          (await value('walpurge_flusher_queue_jobs', { state: 'active' })) === 0
        );
      });
      expect(await value('walpurge_flusher_failures_total', { kind: 'permanent' })).toBe(1);
      const flushed = await value('walpurge_flusher_rows_flushed_total');
      expect(flushed).toBeGreaterThanOrEqual(20);
      expect(flushed).toBeLessThan(100); // coalesced: far fewer row writes than accepted writes
      // The queue-wide totals the coalescing ratio is derived from in PromQL, as the queue Redis keeps them.
      const written = Number(await f.queue.hget(f.layout.stats, 'written'));
      expect(written).toBeGreaterThanOrEqual(20);
      expect(written).toBeLessThan(100);
      await waitFor(
        'rows written refreshed',
        async () => (await value('walpurge_flusher_queue_rows_written_total')) === written,
      );
      expect(await histogramCount(registry, 'walpurge_flusher_flush_duration_seconds')).toBeGreaterThan(0);
      expect(await histogramCount(registry, 'walpurge_flusher_write_latency_seconds')).toBe(flushed);
      expect(await value('walpurge_flusher_batches_total')).toBeGreaterThan(0);
      // The refused row is the oldest pending write now: its age keeps being reported.
      expect(await value('walpurge_flusher_oldest_pending_age_seconds')).toBeGreaterThan(0);

      // Text exposition (what /metrics serves) carries the same families.
      const text = await registry.metrics();
      for (const family of [
        'walpurge_flusher_queue_jobs',
        'walpurge_flusher_pending_rows',
        'walpurge_flusher_oldest_pending_age_seconds',
        'walpurge_flusher_queue_writes_accepted_total',
        'walpurge_flusher_queue_rows_written_total',
        'walpurge_flusher_rows_flushed_total',
        'walpurge_flusher_flush_duration_seconds_bucket',
        'walpurge_flusher_failures_total',
      ]) {
        expect(text).toContain(`${family}`);
      }
    } finally {
      await locker.query('ROLLBACK').catch(() => undefined);
      locker.release();
      await f.close();
    }
  });
});
