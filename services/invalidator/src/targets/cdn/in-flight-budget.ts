import { ErrorCode, WalpurgeError } from '@walpurge/core';

interface Waiter {
  counts: readonly number[];
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * Capacity held while work is in progress elsewhere (CloudFront: the paths and the wildcard paths
 * of invalidations not completed yet). `acquire` takes every dimension at once, in arrival order,
 * so two purges never each hold half of what the other needs. A request larger than a capacity
 * is capped at it (it waits for everything else to finish, then goes alone).
 */
export class InFlightBudget {
  private readonly used: number[];
  private readonly waiters: Waiter[] = [];

  constructor(private readonly capacities: readonly number[]) {
    this.used = capacities.map(() => 0);
  }

  private capped(counts: readonly number[]): number[] {
    return counts.map((count, i) => Math.min(count, this.capacities[i] ?? 0));
  }

  private fits(counts: readonly number[]): boolean {
    return counts.every((count, i) => (this.used[i] ?? 0) + count <= (this.capacities[i] ?? 0));
  }

  private take(counts: readonly number[]): void {
    counts.forEach((count, i) => (this.used[i] = (this.used[i] ?? 0) + count));
  }

  /** Resolves once `counts` fit (taking them); returns the counts actually held, for `release`. */
  async acquire(counts: readonly number[], signal: AbortSignal): Promise<number[]> {
    const wanted = this.capped(counts);
    if (this.waiters.length === 0 && this.fits(wanted)) {
      this.take(wanted);
      return wanted;
    }
    await new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { counts: wanted, resolve, reject };
      const onAbort = (): void => {
        const at = this.waiters.indexOf(waiter);
        if (at >= 0) this.waiters.splice(at, 1);
        reject(new WalpurgeError(ErrorCode.Aborted, 'aborted'));
        this.grant();
      };
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      waiter.resolve = () => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      };
      this.waiters.push(waiter);
    });
    return wanted;
  }

  release(counts: readonly number[]): void {
    counts.forEach((count, i) => (this.used[i] = Math.max(0, (this.used[i] ?? 0) - count)));
    this.grant();
  }

  /** What is in use now, per dimension. */
  inUse(): readonly number[] {
    return [...this.used];
  }

  private grant(): void {
    while (this.waiters.length > 0) {
      const first = this.waiters[0] as Waiter;
      if (!this.fits(first.counts)) return;
      this.waiters.shift();
      this.take(first.counts);
      first.resolve();
    }
  }
}
