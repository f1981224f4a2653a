import { describe, expect, it } from 'vitest';
import { createMetricsRegistry } from '@walpurge/core';
import { createFlusherMetrics } from './metrics.js';

describe('queue-wide totals (QueueTotalCounter)', () => {
  it('exposes no sample before the first total is read from the queue Redis (a 0 then N would be a spike of N in rate())', async () => {
    const registry = createMetricsRegistry({ defaultMetrics: false });
    const metrics = createFlusherMetrics(registry, { heldSeconds: () => 0 });
    const samples = (await registry.metrics())
      .split('\n')
      .filter((line) => line.startsWith('walpurge_flusher_queue_'));
    expect(samples.filter((line) => !line.startsWith('walpurge_flusher_queue_jobs'))).toEqual([]);
    metrics.queueRowsWritten.setTotal(7);
    expect(await registry.metrics()).toContain('\nwalpurge_flusher_queue_rows_written_total 7\n');
    expect(await registry.metrics()).not.toContain('\nwalpurge_flusher_queue_writes_accepted_total');
  });

  it('exposes a total kept in the queue Redis as a counter, following it up and (after a reset) down', async () => {
    const registry = createMetricsRegistry({ defaultMetrics: false });
    const metrics = createFlusherMetrics(registry, { heldSeconds: () => 0 });
    const exposed = async (): Promise<string | undefined> =>
      (await registry.metrics())
        .split('\n')
        .find((line) => line.startsWith('walpurge_flusher_queue_writes_accepted_total '));

    metrics.queueWritesAccepted.setTotal(101);
    expect(await registry.metrics()).toContain('# TYPE walpurge_flusher_queue_writes_accepted_total counter');
    expect(await exposed()).toBe('walpurge_flusher_queue_writes_accepted_total 101');
    metrics.queueWritesAccepted.setTotal(250);
    expect(await exposed()).toBe('walpurge_flusher_queue_writes_accepted_total 250');
    // The queue was deleted and started over: Prometheus reads the drop as a counter reset.
    metrics.queueWritesAccepted.setTotal(3);
    expect(await exposed()).toBe('walpurge_flusher_queue_writes_accepted_total 3');
  });
});
