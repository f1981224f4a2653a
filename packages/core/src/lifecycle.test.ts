import { describe, expect, it } from 'vitest';
import { backoffDelay, retry } from './backoff.js';
import { ErrorCode, WalpurgeError } from './errors.js';
import { ServiceGroup, type Service } from './lifecycle.js';

function recorder(events: string[], name: string, failStart = false): Service {
  return {
    name,
    start: async () => {
      events.push(`start ${name}`);
      if (failStart) throw new Error(`${name} broke`);
    },
    stop: async () => {
      events.push(`stop ${name}`);
    },
  };
}

describe('ServiceGroup', () => {
  it('starts in order and stops in reverse, once, however often stop is called', async () => {
    const events: string[] = [];
    const group = new ServiceGroup([recorder(events, 'a'), recorder(events, 'b'), recorder(events, 'c')]);
    await group.start();
    expect(group.isReady()).toBe(true);
    await Promise.all([group.stop(), group.stop()]);
    expect(events).toEqual(['start a', 'start b', 'start c', 'stop c', 'stop b', 'stop a']);
    expect(group.signal.aborted).toBe(true);
  });

  it('stops what already started when a later service fails to start', async () => {
    const events: string[] = [];
    const group = new ServiceGroup([
      recorder(events, 'a'),
      recorder(events, 'b', true),
      recorder(events, 'c'),
    ]);
    await expect(group.start()).rejects.toThrow('b broke');
    expect(events).toEqual(['start a', 'start b', 'stop a']);
  });
});

describe('backoff and retry', () => {
  it('grows exponentially up to the cap, with bounded jitter', () => {
    const fixed = { initialMs: 100, maxMs: 1000, jitter: 0, random: () => 0.5 };
    expect([0, 1, 2, 3, 4, 10].map((n) => backoffDelay(n, fixed))).toEqual([100, 200, 400, 800, 1000, 1000]);
    const low = backoffDelay(3, { initialMs: 100, maxMs: 10_000, jitter: 0.5, random: () => 0 });
    const high = backoffDelay(3, { initialMs: 100, maxMs: 10_000, jitter: 0.5, random: () => 1 });
    expect([low, high]).toEqual([400, 800]);
  });

  it('retries retriable errors and gives up at once on non-retriable ones', async () => {
    let calls = 0;
    const value = await retry(
      async () => {
        calls += 1;
        if (calls < 3) throw new WalpurgeError(ErrorCode.RedisUnavailable, 'down', { retriable: true });
        return 'ok';
      },
      { initialMs: 1, maxMs: 2, isRetriable: (e) => (e as WalpurgeError).retriable },
    );
    expect([value, calls]).toEqual(['ok', 3]);

    let permanentCalls = 0;
    await expect(
      retry(
        async () => {
          permanentCalls += 1;
          throw new WalpurgeError(ErrorCode.ConfigInvalid, 'bad');
        },
        { initialMs: 1, isRetriable: (e) => (e as WalpurgeError).retriable },
      ),
    ).rejects.toThrow('bad');
    expect(permanentCalls).toBe(1);
  });
});
