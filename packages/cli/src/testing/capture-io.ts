import type { CliIo } from '../cli-io.js';

export interface CapturedIo extends CliIo {
  out(): string;
  err(): string;
}

/** An in-memory CliIo for tests: what the CLI printed, with the environment given (nothing inherited). */
export function captureIo(
  env: Record<string, string | undefined> = {},
  extra: Partial<CliIo> = {},
): CapturedIo {
  let stdout = '';
  let stderr = '';
  return {
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += text) },
    env,
    ...extra,
    out: () => stdout,
    err: () => stderr,
  };
}
