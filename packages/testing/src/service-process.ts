import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';

/** The repository root, from src/ or dist/ alike. */
const repoRoot = resolve(import.meta.dirname, '../../..');

/** A walpurge service run as its own process, with everything it printed. */
export type ServiceProcess = ChildProcess & { output: string[] };

/**
 * A service exactly as deployed, `<main> --config <file>` (e.g. `services/flusher/src/main.ts`), run
 * from source: what crash tests kill with SIGKILL or freeze with SIGSTOP.
 */
export function spawnServiceMain(
  main: string,
  configFile: string,
  env: Record<string, string | undefined> = {},
): ServiceProcess {
  const child = spawn(
    process.execPath,
    ['--conditions=@walpurge/source', '--import', 'tsx', main, '--config', configFile],
    {
      cwd: repoRoot,
      env: { ...process.env, LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const output: string[] = [];
  child.stdout?.on('data', (chunk: Buffer) => output.push(chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => output.push(chunk.toString()));
  return Object.assign(child, { output });
}

/** SIGKILL (after SIGCONT, in case it is frozen), resolving once it exited; a no-op if it already has. */
export async function killNow(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((done) => child.once('exit', done));
  child.kill('SIGCONT');
  child.kill('SIGKILL');
  await exited;
}

/** Sends `signal` and resolves with the exit code once the process exited (at once if it already has). */
export async function signalAndWait(child: ChildProcess, signal: NodeJS.Signals): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  child.kill(signal);
  return exited;
}
