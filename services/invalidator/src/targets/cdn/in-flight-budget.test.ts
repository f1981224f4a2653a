import { describe, expect, it } from 'vitest';
import { InFlightBudget } from './in-flight-budget.js';

describe('InFlightBudget', () => {
  it('holds each dimension up to its capacity and serves waiters in order once released', async () => {
    const budget = new InFlightBudget([3000, 15]);
    const signal = new AbortController().signal;
    expect(await budget.acquire([2990, 10], signal)).toEqual([2990, 10]);
    const order: string[] = [];
    const wildcardHeavy = budget.acquire([1, 10], signal).then(() => order.push('wildcards'));
    const small = budget.acquire([5, 0], signal).then(() => order.push('small'));
    await new Promise((resolve) => setTimeout(resolve, 20));
    // The small one would fit, but it arrived after a waiter: no overtaking (no starvation).
    expect(order).toEqual([]);
    budget.release([2990, 10]);
    await Promise.all([wildcardHeavy, small]);
    expect(order).toEqual(['wildcards', 'small']);
    expect(budget.inUse()).toEqual([6, 10]);
  });

  it('caps a request larger than the capacity, and an aborted waiter leaves the queue', async () => {
    const budget = new InFlightBudget([10]);
    const signal = new AbortController().signal;
    expect(await budget.acquire([50], signal)).toEqual([10]);
    const abort = new AbortController();
    const waiting = budget.acquire([1], abort.signal);
    abort.abort();
    await expect(waiting).rejects.toThrow(/abort/);
    budget.release([10]);
    expect(await budget.acquire([10], signal)).toEqual([10]);
  });
});
