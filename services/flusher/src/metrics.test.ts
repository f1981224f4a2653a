import { describe, expect, it } from 'vitest';
import { createMetricsRegistry } from '@walpurge/core';
import { createFlusherMetrics, setCounterTotal } from './metrics.js';

describe('setCounterTotal', () => {
  it('exposes a total kept in the queue Redis as a counter, following it up and (after a reset) down', async () => {
    const registry = createMetricsRegistry({ defaultMetrics: false });
    const metrics = createFlusherMetrics(registry, { heldSeconds: () => 0 });
    const exposed = async (): Promise<string | undefined> =>
      (await registry.metrics())
        .split('\n')
        .find((line) => line.startsWith('walpurge_flusher_queue_writes_accepted_total '));

    setCounterTotal(metrics.queueWritesAccepted, 101);
    expect(await registry.metrics()).toContain('# TYPE walpurge_flusher_queue_writes_accepted_total counter');
    expect(await exposed()).toBe('walpurge_flusher_queue_writes_accepted_total 101');
    setCounterTotal(metrics.queueWritesAccepted, 250);
    expect(await exposed()).toBe('walpurge_flusher_queue_writes_accepted_total 250');
    // The queue was deleted and started over: Prometheus reads the drop as a counter reset.
    setCounterTotal(metrics.queueWritesAccepted, 3);
    expect(await exposed()).toBe('walpurge_flusher_queue_writes_accepted_total 3');
  });
});
