import { describe, expect, it } from 'vitest';
import { nines } from './inspect-report.js';
import { createSampler } from '../check/sampler.js';

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
