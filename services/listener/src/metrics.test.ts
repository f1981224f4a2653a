import { describe, expect, it } from 'vitest';
import { createMetricsRegistry } from '@walpurge/core';
import { clearStreamingGauges, createListenerMetrics } from './metrics.js';

describe('clearStreamingGauges', () => {
  it('drops the slot gauges, sets streaming to 0 and keeps the counters', async () => {
    const registry = createMetricsRegistry({ defaultMetrics: false });
    const metrics = createListenerMetrics(registry);
    // Before any session streamed (a standby from its start), no slot figure at all.
    expect(await registry.metrics()).not.toMatch(
      /^walpurge_listener_(replication_lag|slot_|durable|pending)/m,
    );
    metrics.streaming.set(1);
    metrics.lagBytes.set(123);
    metrics.lagSeconds.set(4);
    metrics.retainedWalBytes.set(5000);
    metrics.safeWalBytes.set(64);
    metrics.durableLsn.set(99);
    metrics.pendingEvents.set(7);
    metrics.pendingBytes.set(7000);
    metrics.transactions.inc(3);

    clearStreamingGauges(metrics);

    const samples = (await registry.metrics()).split('\n').filter((line) => !line.startsWith('#'));
    const value = (name: string): string | undefined =>
      samples.find((line) => line.startsWith(`${name} `))?.slice(name.length + 1);
    for (const gauge of [
      'walpurge_listener_replication_lag_bytes',
      'walpurge_listener_replication_lag_seconds',
      'walpurge_listener_slot_retained_wal_bytes',
      'walpurge_listener_slot_safe_wal_bytes',
      'walpurge_listener_durable_lsn',
      'walpurge_listener_pending_events',
      'walpurge_listener_pending_bytes',
    ]) {
      expect(value(gauge), gauge).toBeUndefined();
    }
    expect(value('walpurge_listener_streaming')).toBe('0');
    expect(value('walpurge_listener_transactions_total')).toBe('3');

    // The next session's figures appear again.
    metrics.safeWalBytes.set(32);
    expect(await registry.metrics()).toContain('walpurge_listener_slot_safe_wal_bytes 32');
  });
});
