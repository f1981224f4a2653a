import { describe, expect, it } from 'vitest';
import { InspectReport, nines } from './inspect-report.js';
import { renderReport } from './render-report.js';
import { ReportAggregator } from './report-aggregator.js';
import { createSampler } from '../check/sampler.js';
import { lateToleranceMs } from '../check/lateness.js';

describe('nines', () => {
  it('is -log10 of the inconsistent share, a lower bound when none, null when nothing decided', () => {
    expect(nines(1_000_000, 1)).toEqual({ nines: 6, atLeast: false });
    expect(nines(10_000, 0)).toEqual({ nines: 4, atLeast: true });
    expect(nines(0, 0)).toEqual({ nines: null, atLeast: false });
    expect(Object.is(nines(5, 5).nines, 0)).toBe(true);
  });
});

describe('createSampler', () => {
  it('takes draws below the rate, and everything at rate 1', () => {
    const draws = [0.05, 0.5, 0.09, 0.99];
    const sample = createSampler(0.1, () => draws.shift() ?? 1);
    expect([sample(), sample(), sample(), sample()]).toEqual([true, false, true, false]);
    expect(createSampler(1, () => 0.999)()).toBe(true);
  });
});

describe('lateToleranceMs', () => {
  it('is a tenth of the timescale, at least 250 ms', () => {
    expect([1_000, 2_500, 10_000, 60_000].map(lateToleranceMs)).toEqual([250, 250, 1_000, 6_000]);
  });
});

describe('the report of an observer that saw changes late', () => {
  it('counts the keys whose time to consistency is unknown and shows its arrival lag', () => {
    const aggregator = new ReportAggregator(['1s'], 10);
    aggregator.timeToConsistency('sdk', 12);
    aggregator.timeToConsistencySkipped('sdk');
    aggregator.timeToConsistencySkipped('sdk');
    for (const ms of [3, 4, 40_000]) aggregator.arrivalLag(ms);
    const report = aggregator.report();
    expect(report.timeToConsistencyMs.sdk).toMatchObject({ count: 1, p50: 12, skippedLate: 2 });
    expect(report.timeToConsistencyMs.other).toMatchObject({ count: 0, skippedLate: 0 });
    expect(report.arrivalLagMs).toEqual({ count: 3, p50: 4, p99: 40_000 });
    const text = renderReport(report);
    expect(text).toContain(
      'time to consistency (sdk): p50 12 ms, p99 12 ms, p99.9 12 ms (1 keys); never consistent by the last timescale: 0; observer saw the change late (time to consistency unknown): 2',
    );
    expect(text).toContain('observer arrival lag (commit to seen): p50 4 ms, p99 40000 ms (3 changes)');
    expect(text).not.toContain('time to consistency (other)');
  });
});

describe('InspectReport', () => {
  it("reads an older observer's report, which lacks skippedLate and arrivalLagMs (walpurge inspect --from)", () => {
    const current = new ReportAggregator(['1s'], 10).report();
    const { arrivalLagMs: _arrival, ...older } = current;
    const withoutSkipped = (t: (typeof current.timeToConsistencyMs)['sdk']) => {
      const { skippedLate: _skipped, ...rest } = t;
      return rest;
    };
    const parsed = InspectReport.parse({
      ...older,
      timeToConsistencyMs: {
        sdk: withoutSkipped(current.timeToConsistencyMs.sdk),
        other: withoutSkipped(current.timeToConsistencyMs.other),
      },
    });
    expect(parsed.arrivalLagMs).toEqual({ count: 0, p50: 0, p99: 0 });
    expect(parsed.timeToConsistencyMs.sdk.skippedLate).toBe(0);
  });
});
