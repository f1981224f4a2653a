/**
 * Lets one log line through per interval: a failure that repeats on every read or refresh (Redis
 * down, a broken version function) must show in the log without flooding it; its metric counts
 * every occurrence.
 */
export class LogThrottle {
  private last = -Infinity;

  constructor(
    private readonly now: () => number,
    private readonly intervalMs = 10_000,
  ) {}

  /** True when a line may be written now (and starts the next interval). */
  allow(): boolean {
    const at = this.now();
    if (at - this.last < this.intervalMs) return false;
    this.last = at;
    return true;
  }
}
