import type { TextOutput } from '../cli-io.js';
import { formatDuration } from './units.js';

const count = (n: number): string => Math.round(n).toLocaleString('en-US');

/**
 * Progress of a long command on stderr. On a terminal: one bar redrawn in place with rate and ETA;
 * otherwise (logs, CI) a plain line at most every `intervalMs`, so a pipe is not flooded.
 */
export class ProgressBar {
  private readonly startedAt: number;
  private lastLine = 0;
  private drawn = false;

  constructor(
    private readonly out: TextOutput,
    private readonly label: string,
    /** Items expected in all (0 or undefined: unknown, no percentage or ETA). */
    private readonly total: number | undefined,
    /** Items already done before this run (a resume): counted in the position, not in the rate. */
    private readonly initial = 0,
    private readonly unit = 'rows',
    private readonly now: () => number = Date.now,
    private readonly intervalMs = 5_000,
  ) {
    this.startedAt = now();
    this.lastLine = this.startedAt;
  }

  /** The text for `done` items so far (exported for tests and for the final line). */
  describe(done: number): { bar: string; line: string } {
    const elapsed = Math.max(1, this.now() - this.startedAt);
    const rate = ((done - this.initial) * 1000) / elapsed;
    const total = this.total && this.total > 0 ? Math.max(this.total, done) : undefined;
    const fraction = total ? done / total : undefined;
    const eta = total && rate > 0 ? ((total - done) / rate) * 1000 : undefined;
    const position = total ? `${count(done)}/${count(total)} ${this.unit}` : `${count(done)} ${this.unit}`;
    const percent = fraction === undefined ? '' : `${Math.floor(fraction * 100)}%`;
    const speed = `${count(rate)} ${this.unit}/s`;
    const left = eta === undefined ? '' : `ETA ${formatDuration(eta)}`;
    const width = 24;
    const filled = fraction === undefined ? 0 : Math.round(fraction * width);
    const bar = `${this.label} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${[percent, position, speed, left].filter(Boolean).join('  ')}`;
    const line = `${this.label}: ${position}${percent ? ` (${percent})` : ''}, ${speed}${left ? `, ${left}` : ''}`;
    return { bar, line };
  }

  update(done: number): void {
    if (this.out.isTTY) {
      this.out.write(`\r${this.describe(done).bar}\u001b[K`);
      this.drawn = true;
      return;
    }
    if (this.now() - this.lastLine < this.intervalMs) return;
    this.lastLine = this.now();
    this.out.write(`${this.describe(done).line}\n`);
  }

  /** Ends the bar's line on a terminal, so what follows starts on its own line. */
  finish(): void {
    if (this.drawn) this.out.write('\n');
    this.drawn = false;
  }
}
