import { describe, expect, it } from 'vitest';
import { L1Cache } from './l1-cache.js';

function setup(maxStalenessMs = 1_000) {
  let clock = 1_000_000;
  const l1 = new L1Cache({ maxStalenessMs }, () => clock);
  l1.activate();
  const entry = (value: unknown, ttlMs = 60_000) => ({
    value,
    softExpiresAt: clock + ttlMs,
    deltaMs: 5,
    sizeBytes: 10,
  });
  return { l1, entry, advance: (ms: number) => (clock += ms) };
}

describe('L1Cache', () => {
  it('serves an entry until the staleness bound even without invalidation messages', () => {
    const { l1, entry, advance } = setup(1_000);
    l1.complete(l1.begin('k'), entry('v1'));
    advance(1_000);
    expect(l1.get('k')?.value).toBe('v1');
    advance(1);
    expect(l1.get('k')).toBeUndefined();
  });

  it('drops soft-expired entries', () => {
    const { l1, entry, advance } = setup(60_000);
    l1.complete(l1.begin('k'), entry('v1', 100));
    advance(100);
    expect(l1.get('k')).toBeUndefined();
  });

  it('does not store a read whose key was invalidated while the read was in flight', () => {
    const { l1, entry } = setup();
    const ticket = l1.begin('k');
    const other = l1.begin('other');
    l1.invalidate('k');
    l1.complete(ticket, entry('old'));
    l1.complete(other, entry('fine'));
    expect(l1.get('k')).toBeUndefined();
    expect(l1.get('other')?.value).toBe('fine');
  });

  it('flush poisons every read in flight; inactive tracking bypasses and refuses entries', () => {
    const { l1, entry } = setup();
    const ticket = l1.begin('k');
    l1.flush();
    l1.complete(ticket, entry('old'));
    expect(l1.get('k')).toBeUndefined();

    l1.complete(l1.begin('k'), entry('v'));
    expect(l1.get('k')?.value).toBe('v');
    l1.deactivate();
    expect(l1.get('k')).toBeUndefined();
    const during = l1.begin('k');
    l1.activate();
    // Began while tracking was down: invalidations may have been missed, so not stored.
    l1.complete(during, entry('maybe-stale'));
    expect(l1.get('k')).toBeUndefined();
    expect(l1.size).toBe(0);
  });
});
