/** '1s', '10s', '1500ms': how a timescale reads in metrics labels and the report. */
export function timescaleLabel(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

/** The label of checks made once, when `walpurge inspect --once` reads a change. */
export const ONCE_TIMESCALE = 'once';
