import type { Logger } from '@walpurge/core';

export interface RepeatedErrorLogOptions {
  logger: Logger;
  /** Level of the first error of each kind; the summaries of its repeats go out at warn. */
  level: 'error' | 'warn';
  message: string;
  /** At most one summary line per kind of error this often. */
  summaryIntervalMs: number;
  now?: () => number;
}

interface Repeats {
  /** Repeats since the last line logged for this kind. */
  count: number;
  lastLoggedAt: number;
  firstAt: number;
}

/** Distinct kinds remembered at once; past that the memory starts over (first lines logged again). */
const MAX_KINDS = 100;

/**
 * Logs a stream of errors without flooding the log. While the queue Redis is down, ioredis fails
 * every reconnect attempt (several a second, on each connection) and BullMQ re-emits each failure:
 * logged one by one, an outage of minutes becomes thousands of identical error lines that hide
 * everything else. Here the first error of a kind (same code, else same message) is logged at
 * `level`; its repeats are counted and reported in one line per `summaryIntervalMs`; `recovered()`
 * (the connection is back) reports what was left uncounted and starts over.
 */
export class RepeatedErrorLog {
  private readonly kinds = new Map<string, Repeats>();
  private readonly now: () => number;

  constructor(private readonly options: RepeatedErrorLogOptions) {
    this.now = options.now ?? Date.now;
  }

  report(error: unknown): void {
    const kind = kindOf(error);
    const now = this.now();
    const repeats = this.kinds.get(kind);
    if (!repeats) {
      if (this.kinds.size >= MAX_KINDS) this.kinds.clear();
      this.kinds.set(kind, { count: 0, lastLoggedAt: now, firstAt: now });
      this.options.logger[this.options.level]({ err: error }, this.options.message);
      return;
    }
    repeats.count += 1;
    if (now - repeats.lastLoggedAt < this.options.summaryIntervalMs) return;
    this.options.logger.warn(
      { err: error, repeated: repeats.count, sinceMs: now - repeats.firstAt },
      `${this.options.message} (repeated ${repeats.count} times in the last ${Math.round((now - repeats.lastLoggedAt) / 1000)}s)`,
    );
    repeats.count = 0;
    repeats.lastLoggedAt = now;
  }

  /** The failing connection works again: say how long the errors went on, then forget them. */
  recovered(): void {
    if (this.kinds.size === 0) return;
    const now = this.now();
    const firstAt = Math.min(...[...this.kinds.values()].map((repeats) => repeats.firstAt));
    const unreported = [...this.kinds.values()].reduce((sum, repeats) => sum + repeats.count, 0);
    this.options.logger.info(
      { erroredForMs: now - firstAt, unreportedRepeats: unreported, kinds: [...this.kinds.keys()] },
      `${this.options.message}: no longer failing`,
    );
    this.kinds.clear();
  }
}

function kindOf(error: unknown): string {
  if (error && typeof error === 'object') {
    if ('code' in error && (typeof error.code === 'string' || typeof error.code === 'number'))
      return `code:${error.code}`;
    if (error instanceof Error) return `${error.name}: ${error.message}`;
  }
  return String(error);
}
