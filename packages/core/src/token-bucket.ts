import { sleep } from './backoff.js';

export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/**
 * A token bucket that hands out reservations: `reserve(n)` takes n tokens at once, letting the
 * balance go negative, and says how long the caller must wait before sending. Callers are thus
 * served in arrival order, and a request larger than the burst still goes (after the bucket has
 * refilled what it overdraws) instead of waiting forever.
 */
export class TokenBucket {
  private tokens: number;
  private updatedAt: number;

  constructor(
    readonly perSecond: number,
    readonly burst: number,
    private readonly clock: Clock = systemClock,
  ) {
    this.tokens = burst;
    this.updatedAt = clock.now();
  }

  private refill(): void {
    const now = this.clock.now();
    const elapsed = Math.max(0, now - this.updatedAt);
    this.tokens = Math.min(this.burst, this.tokens + (elapsed / 1000) * this.perSecond);
    this.updatedAt = now;
  }

  /** Takes `count` tokens and returns the milliseconds to wait before using them (0: go now). */
  reserve(count: number): number {
    this.refill();
    this.tokens -= count;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens / this.perSecond) * 1000);
  }

  /** Gives back tokens of a reservation that was never used (the caller was aborted while waiting). */
  refund(count: number): void {
    this.refill();
    this.tokens = Math.min(this.burst, this.tokens + count);
  }

  /** Waits until `count` tokens are available (taking them); resolves with the time waited. */
  async take(count: number, signal: AbortSignal): Promise<number> {
    const waitMs = this.reserve(count);
    if (waitMs === 0) return 0;
    try {
      await sleep(waitMs, signal);
    } catch (error) {
      this.refund(count);
      throw error;
    }
    return waitMs;
  }
}
