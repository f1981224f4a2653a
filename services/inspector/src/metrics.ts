import { Counter, Gauge, Histogram, type Registry } from '@walpurge/core';

/** The observer's metrics; names fixed by docs/consistency.md (dashboards and the alert read them). */
export function createInspectMetrics(registry: Registry, isUp: () => boolean = () => false) {
  const registers = [registry];
  return {
    changesSeen: new Counter({
      name: 'walpurge_inspect_changes_seen_total',
      help: 'Changes the consistency observer read from the change stream.',
      registers,
    }),
    changesSampled: new Counter({
      name: 'walpurge_inspect_changes_sampled_total',
      help: 'Changes picked for checking (inspect.sampleRate).',
      registers,
    }),
    checks: new Counter({
      name: 'walpurge_inspect_checks_total',
      help: 'Cache entries checked at commit time + timescale, by verdict (consistent|inconsistent|unverifiable).',
      labelNames: ['rule', 'timescale', 'writer', 'verdict'] as const,
      registers,
    }),
    unchecked: new Counter({
      name: 'walpurge_inspect_unchecked_total',
      help: 'Sampled changes (or their targets) the observer cannot check, by reason.',
      labelNames: ['rule', 'reason'] as const,
      registers,
    }),
    dropped: new Counter({
      name: 'walpurge_inspect_dropped_total',
      help: 'Sampled changes not checked because a bound was reached (inspect.maxPendingChecks, inbox), or changes offered while the observer was not running (not-running, counted before sampling).',
      labelNames: ['reason'] as const,
      registers,
    }),
    errors: new Counter({
      name: 'walpurge_inspect_errors_total',
      help: 'Checks that failed on an error, by target (redis|postgres|decode|internal); the check is counted as not made.',
      labelNames: ['target'] as const,
      registers,
    }),
    pending: new Gauge({
      name: 'walpurge_inspect_pending_checks',
      help: 'Checks and polls scheduled or running (bounded by inspect.maxPendingChecks).',
      registers,
    }),
    timeToConsistency: new Histogram({
      name: 'walpurge_inspect_time_to_consistency_seconds',
      help: 'From a sampled commit to the first poll that found one of its keys consistent, by writer (keys never consistent within the last timescale: walpurge_inspect_never_consistent_total; changes the observer received over 1 s late: walpurge_inspect_time_to_consistency_skipped_total).',
      labelNames: ['writer'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      registers,
    }),
    timeToConsistencySkipped: new Counter({
      name: 'walpurge_inspect_time_to_consistency_skipped_total',
      help: "Sampled keys found consistent whose change reached the observer more than 1 s after its commit, by writer: their time to consistency is unknown (it would be the observer's lag), so not in the histogram.",
      labelNames: ['writer'] as const,
      registers,
    }),
    neverConsistent: new Counter({
      name: 'walpurge_inspect_never_consistent_total',
      help: 'Sampled keys still not consistent when their polls stopped (the last timescale after the commit), by writer: not in the time-to-consistency histogram.',
      labelNames: ['writer'] as const,
      registers,
    }),
    up: new Gauge({
      name: 'walpurge_inspect_up',
      help: "1 while the observer runs (with transport kafka: its consumer joined its group), else 0. Its own health: it never gates the role's /readyz.",
      registers,
      // Read at scrape time: a rebalancing or crashed consumer shows as 0 while it lasts.
      collect() {
        this.set(isUp() ? 1 : 0);
      },
    }),
    startFailures: new Counter({
      name: 'walpurge_inspect_start_failures_total',
      help: "Role 'all': starts of the observer that failed; the role runs on without it (GET /inspect says why).",
      registers,
    }),
    lag: new Gauge({
      name: 'walpurge_inspect_lag_seconds',
      help: 'Now minus the commit time of the last change the observer read.',
      registers,
    }),
  };
}
export type InspectMetrics = ReturnType<typeof createInspectMetrics>;

/**
 * Creates each rule x timescale x writer series of walpurge_inspect_checks_total{verdict="inconsistent"}
 * at 0. A counter series born at its first increment has no earlier sample, so `increase()` over
 * it is 0 and WalpurgeStaleEntryConfirmed would miss the first confirmed inconsistency.
 */
export function initInconsistentSeries(
  metrics: InspectMetrics,
  rules: readonly string[],
  timescales: readonly string[],
): void {
  for (const rule of rules)
    for (const timescale of timescales)
      for (const writer of ['sdk', 'other'] as const)
        metrics.checks.inc({ rule, timescale, writer, verdict: 'inconsistent' }, 0);
}
