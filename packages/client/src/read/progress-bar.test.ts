import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { formatProgressLine, progressBarReporter } from './progress-bar.js';
import type { WarmProgress } from './warm.js';

function capture(isTTY: boolean) {
  const chunks: string[] = [];
  const stream = Object.assign(
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        chunks.push(chunk.toString());
        done();
      },
    }),
    { isTTY },
  );
  return { stream, chunks };
}

function progress(completed: number, total = 10): WarmProgress {
  return { total, completed, loaded: completed, skipped: 0, failed: 0, ratePerSecond: 5, elapsedMs: 100 };
}

describe('progressBarReporter', () => {
  it('formats the bar with counts and rate', () => {
    expect(formatProgressLine({ ...progress(5), loaded: 3, skipped: 1, failed: 1 }, 10)).toBe(
      '[#####-----] 5/10 loaded 3, skipped 1, failed 1, 5/s',
    );
  });

  it('on a terminal redraws in place at most every intervalMs, and always the last state', () => {
    const { stream, chunks } = capture(true);
    const clock = { now: 0 };
    const report = progressBarReporter(stream, { width: 10, intervalMs: 100, now: () => clock.now });
    report(progress(1));
    report(progress(2)); // same instant: skipped
    clock.now = 150;
    report(progress(3));
    report(progress(10)); // finished: drawn, with a newline
    expect(chunks.length).toBe(3);
    expect(chunks.every((c) => c.startsWith('\r'))).toBe(true);
    expect(chunks.at(-1)).toMatch(/10\/10 .*\n$/);
  });

  it('elsewhere prints the first state and a line per 10 %', () => {
    const { stream, chunks } = capture(false);
    const report = progressBarReporter(stream);
    for (let i = 1; i <= 100; i++) report(progress(i, 100));
    expect(chunks.length).toBe(11);
    expect(chunks[0]).toContain('1/100');
    expect(chunks.at(-1)).toContain('100/100');
  });
});
