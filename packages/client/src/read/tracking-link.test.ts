import { describe, expect, it } from 'vitest';
import { TRACKING_RETRY, trackingRetryDelayMs } from './tracking-link.js';

describe('tracking set-up back-off', () => {
  it('doubles from the first delay up to the cap, jittered ±25 %', () => {
    const low = () => 0;
    const high = () => 1 - Number.EPSILON;
    expect(trackingRetryDelayMs(1, low)).toBe(TRACKING_RETRY.firstMs * 0.75);
    expect(trackingRetryDelayMs(2, low)).toBe(TRACKING_RETRY.firstMs * 2 * 0.75);
    expect(trackingRetryDelayMs(4, high)).toBe(Math.round(TRACKING_RETRY.firstMs * 8 * 1.25));
    expect(trackingRetryDelayMs(50, low)).toBe(TRACKING_RETRY.maxMs * 0.75);
    expect(trackingRetryDelayMs(50, high)).toBe(TRACKING_RETRY.maxMs * 1.25);
  });
});
