import { describe, expect, it } from 'vitest';
import { createMetricsRegistry } from '@walpurge/core';
import { clearStreamingGauges, createListenerMetrics, sessionMetrics } from './metrics.js';

const SLOT_GAUGES = [
  'walpurge_listener_replication_lag_bytes',
  'walpurge_listener_replication_lag_seconds',
  'walpurge_listener_slot_retained_wal_bytes',
  'walpurge_listener_slot_safe_wal_bytes',
  'walpurge_listener_durable_lsn',
  'walpurge_listener_pending_events',
  'walpurge_listener_pending_bytes',
];

describe('clearStreamingGauges', () => {
  it("drops the stopped session's slot gauges, sets streaming to 0 and keeps the counters and other slots", async () => {
    const registry = createMetricsRegistry({ defaultMetrics: false });
    const metrics = createListenerMetrics(registry);
    // Before any session streamed (a standby from its start), no slot figure at all.
    expect(await registry.metrics()).not.toMatch(
      /^walpurge_listener_(replication_lag|slot_|durable|pending)/m,
    );
    const mine = { slot: 'walpurge_a', database: 'shop' };
    const other = { slot: 'walpurge_b', database: 'shop' };
    const session = sessionMetrics(metrics, mine);
    metrics.streaming.set(1);
    session.lagBytes.set(123);
    session.lagSeconds.set(4);
    session.retainedWalBytes.set(5000);
    session.safeWalBytes.set(64);
    session.durableLsn.set(99);
    session.pendingEvents.set(7);
    session.pendingBytes.set(7000);
    session.transactions.inc(3);
    sessionMetrics(metrics, other).safeWalBytes.set(1024);

    clearStreamingGauges(metrics, mine);

    const samples = (await registry.metrics()).split('\n').filter((line) => !line.startsWith('#'));
    const value = (series: string): string | undefined =>
      samples.find((line) => line.startsWith(`${series} `))?.slice(series.length + 1);
    for (const gauge of SLOT_GAUGES)
      expect(value(`${gauge}{slot="walpurge_a",database="shop"}`), gauge).toBeUndefined();
    expect(value('walpurge_listener_slot_safe_wal_bytes{slot="walpurge_b",database="shop"}')).toBe('1024');
    expect(value('walpurge_listener_streaming')).toBe('0');
    expect(value('walpurge_listener_transactions_total')).toBe('3');

    // The next session's figures appear again.
    sessionMetrics(metrics, mine).safeWalBytes.set(32);
    expect(await registry.metrics()).toContain(
      'walpurge_listener_slot_safe_wal_bytes{slot="walpurge_a",database="shop"} 32',
    );
  });
});
