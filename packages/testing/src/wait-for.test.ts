import { describe, expect, it } from 'vitest';
import { WaitForAbortError, waitFor } from './wait-for.js';

describe('waitFor', () => {
  it('resolves with the first value that is not undefined or false', async () => {
    let calls = 0;
    const value = await waitFor('the third call', async () => (++calls >= 3 ? { calls } : undefined), {
      intervalMs: 1,
    });
    expect(value).toEqual({ calls: 3 });
  });

  it('treats a thrown error as "not yet"', async () => {
    let calls = 0;
    const value = await waitFor(
      'a flaky check',
      async () => {
        if (++calls < 3) throw new Error('ECONNREFUSED');
        return 'up';
      },
      { intervalMs: 1 },
    );
    expect(value).toBe('up');
  });

  it('times out with an error naming what it waited for and the last failure', async () => {
    const started = Date.now();
    const error = await waitFor(
      'the broker to come up',
      async () => {
        throw new Error('connection refused');
      },
      { timeoutMs: 200, intervalMs: 20 },
    ).catch((err: unknown) => err);

    const elapsed = Date.now() - started;
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(/^Timed out after \d+ ms waiting for the broker to come up/);
    expect((error as Error).message).toContain('connection refused');
    expect((error as Error).cause).toBeInstanceOf(Error);
    expect(elapsed).toBeGreaterThanOrEqual(190);
    expect(elapsed).toBeLessThan(1_000);
  });

  it('times out when the condition stays false', async () => {
    await expect(waitFor('never', async () => false, { timeoutMs: 50, intervalMs: 10 })).rejects.toThrow(
      /waiting for never/,
    );
  });

  it('gives up at once on WaitForAbortError', async () => {
    const started = Date.now();
    await expect(
      waitFor(
        'a dead process',
        async () => {
          throw new WaitForAbortError('postgres exited with code 1');
        },
        { timeoutMs: 10_000 },
      ),
    ).rejects.toThrow('postgres exited with code 1');
    expect(Date.now() - started).toBeLessThan(1_000);
  });
});
