/**
 * Lets a repeating log line through at most once per interval and kind, saying how many
 * occurrences it stands for: a failure or a skip that repeats on every read, change or check (Redis
 * down, a broken version function, a change the observer cannot check) must show in the log
 * without flooding it. Its metric counts every occurrence; this only decides when to write a line.
 */
export class LogThrottle {
  private readonly last = new Map<string, { at: number; since: number }>();

  constructor(
    private readonly intervalMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * The number of occurrences of `kind` to report now (this one included), or 0 to stay quiet.
   * The first occurrence of a kind is always reported. Kinds are few and fixed by the caller (a
   * reason, a rule name), so they are never forgotten.
   */
  take(kind = ''): number {
    const now = this.now();
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
