import type { WarmProgress } from './warm.js';

export interface ProgressBarOptions {
  /** Characters of the bar itself. Default 30. */
  width?: number;
  /** Shortest time between two redraws, ms (the last one is always drawn). Default 100. */
  intervalMs?: number;
  now?: () => number;
}

/**
 * An `onProgress` for warm() that draws a one-line progress bar on a terminal stream (redrawn in
 * place with a carriage return) or, on a non-TTY (a log file, CI), prints a line every 10 %.
 */
export function progressBarReporter(
  stream: NodeJS.WritableStream & { isTTY?: boolean },
  options: ProgressBarOptions = {},
): (progress: WarmProgress) => void {
  const width = options.width ?? 30;
  const intervalMs = options.intervalMs ?? 100;
  const now = options.now ?? Date.now;
  let lastDraw = -Infinity;
  let lastDecile = -1;
  return (progress) => {
    const finished = progress.completed >= progress.total;
    const share = progress.total === 0 ? 1 : progress.completed / progress.total;
    const line = formatProgressLine(progress, width);
    if (stream.isTTY) {
      const at = now();
      if (!finished && at - lastDraw < intervalMs) return;
      lastDraw = at;
      stream.write(`\r${line}${finished ? '\n' : ''}`);
      return;
    }
    const decile = Math.floor(share * 10);
    if (decile === lastDecile && !finished) return;
    if (finished && lastDecile === 10) return;
    lastDecile = decile;
    stream.write(`${line}\n`);
  };
}

export function formatProgressLine(progress: WarmProgress, width = 30): string {
  const share = progress.total === 0 ? 1 : Math.min(1, progress.completed / progress.total);
  const full = Math.round(share * width);
  const bar = `${'#'.repeat(full)}${'-'.repeat(width - full)}`;
  return (
    `[${bar}] ${progress.completed}/${progress.total} ` +
    `loaded ${progress.loaded}, skipped ${progress.skipped}, failed ${progress.failed}, ` +
    `${progress.ratePerSecond.toFixed(0)}/s`
  );
}
