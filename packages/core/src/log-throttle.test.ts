import { describe, expect, it } from 'vitest';
import { LogThrottle } from './log-throttle.js';

describe('LogThrottle', () => {
  it('reports the first occurrence of each kind, then once per interval with the count since', () => {
    let now = 1_000;
    const throttle = new LogThrottle(1_000, () => now);
    expect(throttle.take('a')).toBe(1);
    now += 10;
    expect(throttle.take('a')).toBe(0);
    expect(throttle.take('a')).toBe(0);
    expect(throttle.take('b')).toBe(1);
    now += 989;
    expect(throttle.take('a')).toBe(0);
    now += 1;
    expect(throttle.take('a')).toBe(4);
    expect(throttle.take('a')).toBe(0);
  });

  it('without a kind, throttles one line', () => {
    let now = 0;
    const throttle = new LogThrottle(10_000, () => now);
    expect(throttle.take()).toBe(1);
    now += 9_999;
    expect(throttle.take()).toBe(0);
    now += 1;
    expect(throttle.take()).toBe(2);
  });
});
