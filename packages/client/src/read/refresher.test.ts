import { Registry, createLogger } from '@walpurge/core';
import { describe, expect, it } from 'vitest';
import type { LeasedLoadOutcome } from './leased-load.js';
import { createClientMetrics } from './metrics.js';
import { HotKeyRefresher, type RefreshSettings } from './refresher.js';

const logger = createLogger({ level: 'silent', pretty: false });

/** A refresher over a fake lease path whose loads finish when the test says so. */
function setUp(settings: Partial<RefreshSettings>, clock = { now: 0 }) {
  const metrics = createClientMetrics(new Registry());
  const pending: Array<{ key: string; finish: (outcome: LeasedLoadOutcome) => void }> = [];
  let running = 0;
  let maxRunning = 0;
  const refresher = new HotKeyRefresher(
    { concurrency: 2, ratePerSecond: 1_000, idleTimeoutMs: 60_000, maxKeys: 100, ...settings },
    (key) =>
      new Promise<LeasedLoadOutcome>((resolve) => {
        running += 1;
        maxRunning = Math.max(maxRunning, running);
        pending.push({
          key,
          finish: (outcome) => {
            running -= 1;
            resolve(outcome);
          },
        });
      }),
    metrics,
    logger,
    () => clock.now,
  );
  const loader = async () => 'v';
  return { refresher, metrics, pending, loader, stats: () => ({ running, maxRunning }) };
}

const flush = () => new Promise((resolve) => setImmediate(resolve));

describe('HotKeyRefresher', () => {
  it('runs at most `concurrency` refreshes at once and queues each key once', async () => {
    const { refresher, pending, loader, stats } = setUp({ concurrency: 2 });
    for (let i = 0; i < 5; i++) refresher.mark(`k${i}`, loader, { ttl: 1 });
    for (let i = 0; i < 5; i++) refresher.invalidated(`k${i}`);
    refresher.invalidated('k4'); // already queued
    expect(pending.map((p) => p.key)).toEqual(['k0', 'k1']);
    while (pending.length > 0) {
      pending.shift()?.finish('filled');
      await flush();
    }
    expect(stats().maxRunning).toBe(2);
    await refresher.close();
  });

  it('starts no more than the rate allows: a burst of `concurrency`, then waits for tokens', async () => {
    const clock = { now: 0 };
    const { refresher, pending, loader } = setUp({ concurrency: 2, ratePerSecond: 1 }, clock);
    for (let i = 0; i < 3; i++) refresher.mark(`k${i}`, loader, { ttl: 1 });
    for (let i = 0; i < 3; i++) refresher.invalidated(`k${i}`);
    for (const p of pending.splice(0)) p.finish('filled');
    await flush();
    expect(pending).toEqual([]); // the third waits for a token although a slot is free
    clock.now = 1_000;
    refresher.invalidated('k0'); // any event pumps: one token a second, so k2 starts and k0 waits
    expect(pending.map((p) => p.key)).toEqual(['k2']);
    clock.now = 2_000;
    refresher.invalidated('k1');
    expect(pending.map((p) => p.key)).toEqual(['k2', 'k0']);
    for (const p of pending.splice(0)) p.finish('filled');
    await refresher.close();
  });

  it('forgets an idle key at its next invalidation, and the least recently read one beyond maxKeys', async () => {
    const clock = { now: 0 };
    const { refresher, metrics, pending, loader } = setUp({ idleTimeoutMs: 1_000, maxKeys: 2 }, clock);
    refresher.mark('a', loader, { ttl: 1 });
    refresher.mark('b', loader, { ttl: 1 });
    refresher.mark('c', loader, { ttl: 1 }); // 'a' goes
    expect(refresher.isHot('a')).toBe(false);
    clock.now = 2_000;
    refresher.mark('c', loader, { ttl: 1 }); // read again: not idle
    refresher.invalidated('b');
    refresher.invalidated('c');
    expect(pending.map((p) => p.key)).toEqual(['c']);
    expect(refresher.isHot('b')).toBe(false);
    const dropped = Object.fromEntries(
      (await metrics.refreshKeysDropped.get()).values.map((v) => [v.labels['reason'], v.value]),
    );
    expect(dropped).toEqual({ capacity: 1, idle: 1 });
    pending.shift()?.finish('filled');
    await refresher.close();
  });

  it('looks at a key once more when it was invalidated during its refresh', async () => {
    const { refresher, pending, loader, metrics } = setUp({});
    refresher.mark('k', loader, { ttl: 1 });
    refresher.invalidated('k');
    refresher.invalidated('k'); // e.g. its own lease, or a purge racing the load
    expect(pending.length).toBe(1);
    pending.shift()?.finish('rejected');
    await flush();
    expect(pending.map((p) => p.key)).toEqual(['k']);
    pending.shift()?.finish('filled');
    await flush();
    const outcomes = Object.fromEntries(
      (await metrics.refreshes.get()).values.map((v) => [v.labels['outcome'], v.value]),
    );
    expect(outcomes).toEqual({ rejected: 1, done: 1 });
    await refresher.close();
  });

  it('close() waits for refreshes in flight and ignores later invalidations', async () => {
    const { refresher, pending, loader } = setUp({});
    refresher.mark('k', loader, { ttl: 1 });
    refresher.invalidated('k');
    let closed = false;
    const closing = refresher.close().then(() => (closed = true));
    await flush();
    expect(closed).toBe(false);
    refresher.invalidated('k');
    pending.shift()?.finish('filled');
    await closing;
    expect(pending).toEqual([]);
  });
});
