import { describe, expect, it } from 'vitest';
import { ProgressBar } from './progress.js';

function output(isTTY: boolean): { text: string; write(text: string): void; isTTY: boolean } {
  return {
    text: '',
    isTTY,
    write(text: string) {
      this.text += text;
    },
  };
}

describe('ProgressBar', () => {
  it('redraws one line on a terminal with percentage, rate and ETA', () => {
    let now = 0;
    const out = output(true);
    const bar = new ProgressBar(out, 'purge t', 1000, 0, 'rows', () => now);
    now = 2_000;
    bar.update(500);
    bar.finish();
    expect(out.text).toBe(
      '\rpurge t [############------------] 50%  500/1,000 rows  250 rows/s  ETA 2.0 s\u001b[K\n',
    );
  });

  it('prints plain lines at most every interval when not a terminal, rate counting this run only', () => {
    let now = 0;
    const out = output(false);
    const bar = new ProgressBar(out, 'purge t', 1000, 400, 'rows', () => now, 5_000);
    now = 1_000;
    bar.update(450);
    expect(out.text).toBe('');
    now = 5_000;
    bar.update(600);
    expect(out.text).toBe('purge t: 600/1,000 rows (60%), 40 rows/s, ETA 10.0 s\n');
    bar.finish();
    expect(out.text).not.toMatch(/\n\n$/);
  });

  it('shows no percentage or ETA when the total is unknown', () => {
    let now = 0;
    const out = output(false);
    const bar = new ProgressBar(out, 'p', undefined, 0, 'rows', () => now, 0);
    now = 1_000;
    bar.update(10);
    expect(out.text).toBe('p: 10 rows, 10 rows/s\n');
  });
});
