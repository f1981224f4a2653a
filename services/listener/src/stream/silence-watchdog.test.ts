import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { SilenceWatchdog } from './silence-watchdog.js';

describe('SilenceWatchdog', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  function started(intervals = 3): { watchdog: SilenceWatchdog; dead: number[] } {
    const dead: number[] = [];
    const watchdog = new SilenceWatchdog({
      statusIntervalMs: 1000,
      intervals,
      walSenderTimeoutMs: 0,
      onDead: (silentMs) => dead.push(silentMs),
    });
    watchdog.start();
    watchdog.streamingStarted();
    return { watchdog, dead };
  }

  it('turns late after 1.5 intervals (+0.5 s) of silence and dead after N intervals, once', () => {
    const { watchdog, dead } = started(3);
    vi.advanceTimersByTime(1900);
    expect(watchdog.late()).toBe(false);
    vi.advanceTimersByTime(200);
    expect(watchdog.late()).toBe(true);
    expect(dead).toEqual([]);
    vi.advanceTimersByTime(1000);
    expect(dead).toHaveLength(1);
    expect(dead[0]).toBeGreaterThanOrEqual(3000);
    vi.advanceTimersByTime(10_000);
    expect(dead).toHaveLength(1);
  });

  it('is reset by every server message', () => {
    const { watchdog, dead } = started(3);
    for (let i = 0; i < 10; i += 1) {
      vi.advanceTimersByTime(1500);
      watchdog.heard();
    }
    expect(dead).toEqual([]);
    expect(watchdog.late()).toBe(false);
  });

  it('does not count the time the listener itself stopped reading (backpressure)', () => {
    const { watchdog, dead } = started(3);
    watchdog.suspend();
    vi.advanceTimersByTime(60_000);
    expect(dead).toEqual([]);
    expect(watchdog.silenceMs()).toBe(0);
    watchdog.resume();
    vi.advanceTimersByTime(2900);
    expect(dead).toEqual([]);
    vi.advanceTimersByTime(200);
    expect(dead).toHaveLength(1);
  });

  it('gives connection setup at least 30 s before the stream starts', () => {
    const dead: number[] = [];
    const watchdog = new SilenceWatchdog({
      statusIntervalMs: 500,
      intervals: 3,
      walSenderTimeoutMs: 0,
      onDead: (ms) => dead.push(ms),
    });
    watchdog.start();
    vi.advanceTimersByTime(29_000);
    expect(watchdog.late()).toBe(false);
    expect(dead).toEqual([]);
    vi.advanceTimersByTime(2000);
    expect(dead).toHaveLength(1);
  });

  it('never declares dead before a whole wal_sender_timeout, within which a busy server pings on its own', () => {
    const dead: number[] = [];
    const watchdog = new SilenceWatchdog({
      statusIntervalMs: 1000,
      intervals: 3,
      walSenderTimeoutMs: 60_000,
      onDead: (ms) => dead.push(ms),
    });
    expect(watchdog.deadAfterMs).toBe(60_000);
    watchdog.start();
    watchdog.streamingStarted();
    vi.advanceTimersByTime(59_000);
    expect(dead).toEqual([]);
    expect(watchdog.late()).toBe(true); // readiness says so long before
    vi.advanceTimersByTime(2000);
    expect(dead).toHaveLength(1);
  });
});
