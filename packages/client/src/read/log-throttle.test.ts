import { describe, expect, it } from 'vitest';
import { LogThrottle } from './log-throttle.js';

describe('LogThrottle', () => {
  it('lets the first line through, then one per interval', () => {
    let now = 1_000;
    const throttle = new LogThrottle(() => now, 10_000);
    expect(throttle.allow()).toBe(true);
    now += 9_999;
    expect(throttle.allow()).toBe(false);
    now += 1;
    expect(throttle.allow()).toBe(true);
    expect(throttle.allow()).toBe(false);
  });
});
