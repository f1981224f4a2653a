import { describe, expect, it } from 'vitest';
import { FlusherConfig } from './schema/flusher.js';

describe('flusher.acceptDurability', () => {
  const base = { queueRedisUrl: 'redis://queue:6379' };

  it('defaults to the primary alone', () => {
    expect(FlusherConfig.parse(base).acceptDurability).toEqual({ mode: 'primary' });
  });

  it('fills replica defaults', () => {
    expect(FlusherConfig.parse({ ...base, acceptDurability: { mode: 'replica' } }).acceptDurability).toEqual({
      mode: 'replica',
      replicas: 1,
      timeoutMs: 1_000,
    });
  });

  it('refuses what cannot mean anything: WAIT for no replica, options of another mode', () => {
    expect(() =>
      FlusherConfig.parse({ ...base, acceptDurability: { mode: 'replica', replicas: 0 } }),
    ).toThrow(/replicas >= 1/);
    expect(() =>
      FlusherConfig.parse({ ...base, acceptDurability: { mode: 'primary', replicas: 1 } }),
    ).toThrow();
    expect(
      FlusherConfig.parse({ ...base, acceptDurability: { mode: 'aof', replicas: 0 } }).acceptDurability,
    ).toEqual({
      mode: 'aof',
      replicas: 0,
      timeoutMs: 1_000,
    });
  });
});
