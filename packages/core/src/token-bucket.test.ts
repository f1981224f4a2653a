import { describe, expect, it } from 'vitest';
import { TokenBucket } from './token-bucket.js';

function manualClock(start = 1_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

describe('TokenBucket', () => {
  it('lets a burst through at once, then paces at the refill rate', () => {
    const clock = manualClock();
    const bucket = new TokenBucket(5, 3, clock);
    expect([bucket.reserve(1), bucket.reserve(1), bucket.reserve(1)]).toEqual([0, 0, 0]);
    // Empty: the next token comes 200 ms later, the one after 400 ms.
    expect(bucket.reserve(1)).toBe(200);
    expect(bucket.reserve(1)).toBe(400);
    clock.advance(400);
    expect(bucket.reserve(1)).toBe(200);
  });

  it('refills to the burst at most, however long it was idle', () => {
    const clock = manualClock();
    const bucket = new TokenBucket(1, 2, clock);
    bucket.reserve(2);
    clock.advance(3_600_000);
    expect(bucket.reserve(2)).toBe(0);
    expect(bucket.reserve(1)).toBe(1000);
  });

  it('counts items: a reservation larger than the burst waits for what it overdraws', () => {
    const clock = manualClock();
    const bucket = new TokenBucket(100, 100, clock);
    expect(bucket.reserve(250)).toBe(1500);
  });

  it('a per-minute rate (Cloudflare free: 5 per minute, burst 25)', () => {
    const clock = manualClock();
    const bucket = new TokenBucket(5 / 60, 25, clock);
    for (let i = 0; i < 25; i += 1) expect(bucket.reserve(1)).toBe(0);
    expect(bucket.reserve(1)).toBe(12_000);
  });

  it('gives the tokens back when the waiting caller is aborted', async () => {
    const clock = manualClock();
    const bucket = new TokenBucket(1, 1, clock);
    bucket.reserve(1);
    const abort = new AbortController();
    const waiting = bucket.take(1, abort.signal);
    abort.abort();
    await expect(waiting).rejects.toThrow(/abort/);
    clock.advance(1000);
    expect(bucket.reserve(1)).toBe(0);
  });
});
