import { describe, expect, it } from 'vitest';
import type { ChangeEvent } from '@walpurge/protocol';
import { Coalescer } from './coalescer.js';

const ev = (id: number): ChangeEvent => ({
  v: 1,
  op: 'c',
  source: {
    db: 'd',
    schema: 'public',
    table: 't',
    lsn: '0/1',
    xid: 1,
    commitTs: '2026-01-01T00:00:00Z',
    origin: null,
  },
  key: { id },
  before: null,
  after: { id },
  unchanged: [],
});

describe('Coalescer', () => {
  it('merges submissions inside the window into one run and settles every submitter after it', async () => {
    const runs: number[][] = [];
    let release: () => void = () => undefined;
    const coalescer = new Coalescer(
      async (events) => {
        runs.push(events.map((e) => e.key?.['id'] as number));
        await new Promise<void>((resolve) => (release = resolve));
      },
      20,
      1000,
    );
    let settled = 0;
    const a = coalescer.submit([ev(1), ev(2)]).then(() => settled++);
    const b = coalescer.submit([ev(3)]).then(() => settled++);
    await new Promise((r) => setTimeout(r, 50));
    expect(runs).toEqual([[1, 2, 3]]);
    expect(settled).toBe(0);
    release();
    await Promise.all([a, b]);
    expect(settled).toBe(2);
  });

  it('with a 0 ms window, merges what is submitted in the same turn and nothing later', async () => {
    const runs: number[][] = [];
    const coalescer = new Coalescer(
      async (events) => void runs.push(events.map((e) => e.key?.['id'] as number)),
      0,
      1000,
    );
    await Promise.all([coalescer.submit([ev(1)]), coalescer.submit([ev(2), ev(3)])]);
    await coalescer.submit([ev(4)]);
    expect(runs).toEqual([[1, 2, 3], [4]]);
  });

  it('flushes at maxEvents without waiting for the window', async () => {
    const runs: number[] = [];
    const coalescer = new Coalescer(async (events) => void runs.push(events.length), 60_000, 3);
    await Promise.all([coalescer.submit([ev(1), ev(2)]), coalescer.submit([ev(3)])]);
    expect(runs).toEqual([3]);
  });

  it('rejects every submitter of a failed run', async () => {
    const coalescer = new Coalescer(async () => Promise.reject(new Error('boom')), 5, 100);
    const results = await Promise.allSettled([coalescer.submit([ev(1)]), coalescer.submit([ev(2)])]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
  });
});
