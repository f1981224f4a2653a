/**
 * Prometheus naming conventions, checked on what the code really registers (every metric factory
 * run on one registry): counters end in `_total`, no ratio is exported as a gauge (ratios are
 * derived in PromQL, where they can be aggregated), default process metrics keep their standard
 * names, and the slot gauges name their slot and database so two instances side by side stay apart.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { instantiatedMetrics, scannedMetrics, type InstantiatedMetric } from './metrics-in-code.js';

let metrics: Map<string, InstantiatedMetric>;
beforeAll(async () => {
  metrics = await instantiatedMetrics();
});

const ofType = (type: string): string[] =>
  [...metrics.values()].filter((metric) => metric.type === type).map((metric) => metric.name);

describe('metric names and types', () => {
  it('covers every metric named in the shipped sources (a new factory must be added to the inventory)', () => {
    const named = [...scannedMetrics().keys()];
    expect(named.length).toBeGreaterThan(50);
    expect(named.filter((name) => !metrics.has(name))).toEqual([]);
  });

  it('names every counter `…_total`, and only counters', () => {
    expect(ofType('counter').length).toBeGreaterThan(20);
    expect(ofType('counter').filter((name) => !name.endsWith('_total'))).toEqual([]);
    // prom-client's own nodejs_active_*_total are gauges: its names, not ours.
    const totals = [...metrics.values()].filter(
      (metric) => metric.name.startsWith('walpurge_') && metric.name.endsWith('_total'),
    );
    expect(totals.filter((metric) => metric.type !== 'counter').map((metric) => metric.name)).toEqual([]);
  });

  it('exports no ratio: ratios are derived in PromQL from the counters', () => {
    expect([...metrics.keys()].filter((name) => /_(ratio|percent|rate)(_|$)/.test(name))).toEqual([]);
  });

  it('keeps the default process metrics under their standard names', () => {
    for (const name of [
      'process_cpu_seconds_total',
      'process_resident_memory_bytes',
      'nodejs_eventloop_lag_p99_seconds',
    ])
      expect(metrics.has(name), name).toBe(true);
    expect([...metrics.keys()].filter((name) => name.startsWith('walpurge_process_'))).toEqual([]);
  });

  it("labels every gauge about the listener's slot with its slot and database", () => {
    // `streaming` says whether this pod streams at all (0 on a standby, which reads no slot).
    const slotGauges = ofType('gauge').filter(
      (name) => name.startsWith('walpurge_listener_') && name !== 'walpurge_listener_streaming',
    );
    expect(slotGauges).toEqual(
      expect.arrayContaining([
        'walpurge_listener_replication_lag_seconds',
        'walpurge_listener_slot_retained_wal_bytes',
        'walpurge_listener_slot_safe_wal_bytes',
      ]),
    );
    for (const name of slotGauges) expect(metrics.get(name)?.labelNames, name).toEqual(['slot', 'database']);
  });
});
