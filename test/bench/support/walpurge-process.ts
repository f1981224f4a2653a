import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Role } from 'walpurge';

const repoRoot = resolve(import.meta.dirname, '../../..');
const cliMain = join(repoRoot, 'packages/cli/dist/main.js');

/**
 * Compiles the repository (`tsc -b packages/cli`, incremental) so walpurge runs as it ships, from JavaScript:
 * no on-the-fly TypeScript compiler in the measured process's CPU or memory.
 */
export function buildWalpurge(log: (line: string) => void): void {
  log('building walpurge (tsc -b packages/cli)…');
  const built = spawnSync(join(repoRoot, 'node_modules/.bin/tsc'), ['-b', 'packages/cli'], {
    cwd: repoRoot,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (built.status !== 0) throw new Error(`tsc -b failed with exit code ${built.status ?? built.signal}`);
}

export interface WalpurgeProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  alive(): boolean;
  /** SIGTERM and wait for the exit; SIGKILL after 60 s. */
  stop(): Promise<void>;
}

/**
 * `walpurge run --role <role> --config <file>`, its output to `logFile`. BENCH_NODE_ARGS (split on
 * spaces) go to node before the script, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` to profile the
 * process (node refuses --cpu-prof in NODE_OPTIONS).
 */
export function startWalpurge(role: Role, configFile: string, logFile: string): WalpurgeProcess {
  const nodeArgs = (process.env['BENCH_NODE_ARGS'] ?? '').split(' ').filter((arg) => arg !== '');
  const child = spawn(
    process.execPath,
    [...nodeArgs, cliMain, 'run', '--role', role, '--config', configFile],
    {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const log = createWriteStream(logFile);
  child.stdout.pipe(log, { end: false });
  child.stderr.pipe(log, { end: false });
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  if (child.pid === undefined) throw new Error('walpurge could not be started');
  return {
    child,
    pid: child.pid,
    alive: () => child.exitCode === null && child.signalCode === null,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
        await exited;
        clearTimeout(timer);
      }
      log.end();
    },
  };
}
