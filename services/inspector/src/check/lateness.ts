/**
 * How late a timescale check may start and still judge "consistent within T". An observer that
 * receives a change late (its consumer lagged, its event loop was starved) would otherwise read the
 * key long after commit + T and credit T with purges that landed since. A tenth of T, at least
 * 250 ms: the scheduler's and the event loop's ordinary jitter must not void checks.
 */
export function lateToleranceMs(timescaleMs: number): number {
  return Math.max(250, timescaleMs / 10);
}

/**
 * A change the observer received more than this after its commit gets no time-to-consistency
 * sample: its first poll comes at least that late, so the figure would be the observer's lag.
 */
export const SEEN_LATE_MS = 1_000;
