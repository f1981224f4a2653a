/**
 * What the observer skips or fails on can repeat for every change: each kind (rule + reason, error
 * target) is logged the first time, then at most once a minute, with how many happened between.
 * The counters carry every occurrence.
 */
export class ThrottledLog {
  private readonly last = new Map<string, { at: number; since: number }>();

  constructor(private readonly intervalMs = 60_000) {}

  /** The number of occurrences to report now (this one included), or 0 to stay quiet. */
  take(kind: string, now = Date.now()): number {
    const entry = this.last.get(kind);
    if (entry && now - entry.at < this.intervalMs) {
      entry.since += 1;
      return 0;
    }
    const count = (entry?.since ?? 0) + 1;
    this.last.set(kind, { at: now, since: 0 });
    return count;
  }
}
