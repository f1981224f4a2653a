import { describe, expect, it } from 'vitest';
import { jitteredTtlMs, shouldRefreshEarly } from './xfetch.js';

describe('shouldRefreshEarly (XFetch)', () => {
  const fixed = (u: number) => () => u;

  it('refreshes exactly when delta·beta·(−ln U) reaches the remaining time', () => {
    // random() = 1 − U; U = e^-1 makes −ln U = 1, so the threshold is delta·beta.
    const r = fixed(1 - Math.exp(-1));
    expect(shouldRefreshEarly({ remainingMs: 100, deltaMs: 100, beta: 1, random: r })).toBe(true);
    expect(shouldRefreshEarly({ remainingMs: 101, deltaMs: 100, beta: 1, random: r })).toBe(false);
    expect(shouldRefreshEarly({ remainingMs: 200, deltaMs: 100, beta: 2, random: r })).toBe(true);
    expect(shouldRefreshEarly({ remainingMs: 201, deltaMs: 100, beta: 2, random: r })).toBe(false);
  });

  it('always refreshes once expired, never when beta or delta is 0', () => {
    expect(shouldRefreshEarly({ remainingMs: 0, deltaMs: 0, beta: 0, random: fixed(0) })).toBe(true);
    expect(shouldRefreshEarly({ remainingMs: 1, deltaMs: 1_000, beta: 0, random: fixed(0.999) })).toBe(false);
    expect(shouldRefreshEarly({ remainingMs: 1, deltaMs: 0, beta: 1, random: fixed(0.999) })).toBe(false);
  });

  it('survives random() returning its extremes', () => {
    expect(shouldRefreshEarly({ remainingMs: 1e9, deltaMs: 10, beta: 1, random: fixed(0) })).toBe(false);
    // random() just below 1 → U tiny → −ln U large: refresh.
    expect(shouldRefreshEarly({ remainingMs: 1e3, deltaMs: 10, beta: 1, random: fixed(1 - 1e-300) })).toBe(
      true,
    );
  });

  it('refreshes more often as expiry approaches (matches 1 − e^(−remaining/(delta·beta)))', () => {
    let seed = 12345;
    const lcg = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const rate = (remainingMs: number) => {
      let hits = 0;
      for (let i = 0; i < 20_000; i++)
        if (shouldRefreshEarly({ remainingMs, deltaMs: 50, beta: 1, random: lcg })) hits++;
      return hits / 20_000;
    };
    const far = rate(500);
    const near = rate(25);
    expect(far).toBeCloseTo(Math.exp(-500 / 50), 2);
    expect(near).toBeCloseTo(Math.exp(-25 / 50), 1);
    expect(near).toBeGreaterThan(far);
  });
});

describe('jitteredTtlMs', () => {
  it('only ever shortens, by at most the jitter fraction', () => {
    expect(jitteredTtlMs(10_000, 0.1, () => 0)).toBe(10_000);
    expect(jitteredTtlMs(10_000, 0.1, () => 0.999_999)).toBe(9_000);
    expect(jitteredTtlMs(10_000, 0.1, () => 0.5)).toBe(9_500);
    expect(jitteredTtlMs(10_000, 0, () => 0.9)).toBe(10_000);
    expect(jitteredTtlMs(0.2, 0.5, () => 0.9)).toBe(1);
  });
});
