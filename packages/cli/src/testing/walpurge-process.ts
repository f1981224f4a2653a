import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { WaitForAbortError, waitFor } from '@walpurge/testing';

export const repoRoot = fileURLToPath(new URL('../../../../', import.meta.url));
const mainTs = fileURLToPath(new URL('../main.ts', import.meta.url));

export interface WalpurgeProcess {
  readonly child: ChildProcess;
  /** stdout and stderr so far, interleaved. */
  output(): string;
  stdout(): string;
  /** Resolves with the exit code (or the signal's name) once the process has exited. */
  readonly exited: Promise<number | NodeJS.Signals>;
  /** kill -9 and wait for the exit. */
  killNow(): Promise<void>;
}

export interface SpawnWalpurgeOptions {
  /** An installed `walpurge` bin (e.g. node_modules/.bin/walpurge of an npm install) and where to run it. */
  installed?: { bin: string; cwd: string };
}

/**
 * The real `walpurge` command as its own process (from source, so it is never a stale build, unless
 * `installed` names a packaged one), for tests that need what only a process has: kill -9, signals,
 * exit codes, stdout a person reads.
 */
export function spawnWalpurge(
  args: string[],
  env: Record<string, string | undefined>,
  options: SpawnWalpurgeOptions = {},
): WalpurgeProcess {
  const { installed } = options;
  const entry = installed ? [installed.bin] : ['--conditions=@walpurge/source', '--import', 'tsx', mainTs];
  const child = spawn(process.execPath, [...entry, ...args], {
    cwd: installed?.cwd ?? repoRoot,
    env: { PATH: process.env['PATH'], HOME: process.env['HOME'], ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let all = '';
  let out = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    all += chunk.toString();
    out += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => (all += chunk.toString()));
  const exited = new Promise<number | NodeJS.Signals>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)),
  );
  return {
    child,
    output: () => all,
    stdout: () => out,
    exited,
    killNow: async () => {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

export interface Readiness {
  status: number;
  body: { status: string; checks: Record<string, string> };
}

export async function readyz(port: number): Promise<Readiness> {
  const response = await fetch(`http://127.0.0.1:${port}/readyz`);
  return { status: response.status, body: (await response.json()) as Readiness['body'] };
}

/** Polls /readyz until it answers 200; gives up at once if the process died. */
export async function waitUntilReady(
  port: number,
  walpurge?: WalpurgeProcess,
  timeoutMs = 30_000,
): Promise<Readiness> {
  return waitFor(
    `walpurge on port ${port} to be ready`,
    async () => {
      if (walpurge && walpurge.child.exitCode !== null)
        throw new WaitForAbortError(`walpurge exited with ${walpurge.child.exitCode}:\n${walpurge.output()}`);
      const result = await readyz(port);
      return result.status === 200 ? result : undefined;
    },
    { timeoutMs, intervalMs: 100 },
  );
}
