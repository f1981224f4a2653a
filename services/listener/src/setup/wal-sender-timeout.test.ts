import { describe, expect, it } from 'vitest';
import { checkStatusInterval } from './wal-sender-timeout.js';

describe('checkStatusInterval', () => {
  it('refuses an interval at or above wal_sender_timeout, warns above half of it, accepts the rest', () => {
    expect(checkStatusInterval(60_000, 60_000).problem).toMatch(
      /is not below the server's wal_sender_timeout/,
    );
    const close = checkStatusInterval(40_000, 60_000);
    expect(close.problem).toBeUndefined();
    expect(close.warning).toMatch(/more than half/);
    expect(checkStatusInterval(10_000, 60_000)).toEqual({ fix: expect.any(String) as unknown });
    expect(checkStatusInterval(10_000, 60_000).fix).toMatch(/at most 20000/);
  });

  it('accepts any interval when the server never times out (wal_sender_timeout = 0), with a warning', () => {
    expect(checkStatusInterval(600_000, 0).problem).toBeUndefined();
    expect(checkStatusInterval(600_000, 0).warning).toMatch(/never pings on its own/);
  });
});
