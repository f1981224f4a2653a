import { describe, expect, it } from 'vitest';
import { WalpurgeConfig } from '@walpurge/config';
import { compileRules } from '@walpurge/rules';
import { callsPerSecond, estimatePurges } from './purge-estimate.js';

describe('callsPerSecond', () => {
  it('below one item per coalescing window, every item is a call of its own', () => {
    expect(callsPerSecond(0.2, 100, 2)).toBe(0.2);
    expect(callsPerSecond(0, 100, 2)).toBe(0);
  });

  it("above it, a window's items fill calls of the provider's items per call", () => {
    // 300 items/s × 2 s = 600 items per window = 6 calls of 100 → 3 calls/s.
    expect(callsPerSecond(300, 100, 2)).toBe(3);
    // 30 items/s × 2 s = 60 items: one (partly filled) call per window.
    expect(callsPerSecond(30, 100, 2)).toBe(0.5);
    // One URL per call (Fastly, generic HTTP): calls = items.
    expect(callsPerSecond(30, 1, 2)).toBe(30);
  });
});

describe('estimatePurges: cdn.coalesceWindowMs', () => {
  const estimate = (coalesceWindowMs?: number) => {
    const config = WalpurgeConfig.parse({
      cdn: {
        ...(coalesceWindowMs === undefined ? {} : { coalesceWindowMs }),
        fastly: { serviceId: 'S1', apiToken: 'x' },
      },
      rules: [{ table: 'pages', name: 'pages', cdn: { tags: ['page-{id}'] } }],
    });
    return estimatePurges(config, compileRules(config.rules).rules, undefined);
  };

  it('0 means no coalescing, not the 2000 ms default', async () => {
    const zero = await estimate(0);
    expect(zero?.coalesceWindowMs).toBe(0);
    expect(zero?.lines[0]).toMatch(/no coalescing/);
    expect((await estimate())?.coalesceWindowMs).toBe(2000);
    expect((await estimate(500))?.coalesceWindowMs).toBe(500);
  });

  it('without a window, every item is a call of its own', () => {
    expect(callsPerSecond(300, 100, 0)).toBe(300);
  });
});
