/**
 * Everything a command touches of the outside world, injected so tests can run the CLI in-process
 * (`runCli(argv, io)`) and read what it printed, and so `main.ts` is the only place that knows about
 * `process`.
 */
export interface TextOutput {
  write(text: string): unknown;
  /** Set on real terminals; used to pick tables vs plain lines and to allow prompts. */
  isTTY?: boolean;
}

export interface CliIo {
  stdout: TextOutput;
  stderr: TextOutput;
  env: Record<string, string | undefined>;
  /** Reads one line from the user (typed confirmations); absent when stdin is not a terminal. */
  prompt?: (question: string) => Promise<string>;
  /**
   * Stops long-running commands (`run`, `quickstart`) like SIGTERM would. `main.ts` wires real
   * signals instead; tests abort this.
   */
  signal?: AbortSignal;
  /** Whether long-running commands should install SIGINT/SIGTERM handlers (only the real process). */
  handleSignals?: boolean;
}

/** Documented in `walpurge --help` and docs/configuration.md. */
export const ExitCode = {
  Ok: 0,
  /** Problems found (validate), a failure while working, or a refused operation. */
  Failure: 1,
  /** The command line itself is wrong: unknown command/option, missing or malformed value. */
  Usage: 2,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** Wrong command line: printed with a pointer to --help, exit code 2. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly command?: string,
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

export function writeLine(out: TextOutput, text = ''): void {
  out.write(`${text}\n`);
}
