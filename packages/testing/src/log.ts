export type LogFn = (line: string) => void;

// stderr, not stdout: vitest and CLI callers keep stdout for results.
export const defaultLog: LogFn = (line) => console.error(line);

export function prefixed(log: LogFn): LogFn {
  return (line) => log(`[walpurge-testing] ${line}`);
}
