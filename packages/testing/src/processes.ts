import { spawn } from 'node:child_process';
import { closeSync, openSync, readSync, fstatSync } from 'node:fs';
import { killGroup, trackProcessGroup } from './cleanup.js';
import { findExecutable, type SystemUser } from './executables.js';

export interface SpawnOptions {
  cwd: string;
  /** stdout and stderr both go here; `logTail()` reads it back for error messages. */
  logFile: string;
  env?: NodeJS.ProcessEnv;
  runAs?: SystemUser;
  /** First, polite signal of `stop()`; SIGKILL follows after `stopTimeoutMs`. */
  stopSignal?: NodeJS.Signals;
  stopTimeoutMs?: number;
}

export interface ManagedProcess {
  readonly name: string;
  readonly pid: number | undefined;
  /** Undefined while running, else how it ended ("exited with code 1", "killed by SIGKILL"). */
  readonly exitStatus: string | undefined;
  readonly exitCode: number | null | undefined;
  readonly exited: Promise<void>;
  logTail(maxLines?: number): string;
  stop(): Promise<void>;
}

// setpriv --pdeathsig makes the kernel kill the child when we die, even by SIGKILL, where no
// JavaScript cleanup can run. Resolved once; without it (non-Linux) only the exit handlers remain.
let setprivPath: string | null | undefined;
function pdeathsigWrapper(): string | null {
  if (setprivPath === undefined) {
    setprivPath =
      process.platform === 'linux' ? (findExecutable('setpriv', ['/usr/bin', '/bin']) ?? null) : null;
  }
  return setprivPath;
}

export function spawnManaged(
  name: string,
  command: string,
  args: string[],
  opts: SpawnOptions,
): ManagedProcess {
  const wrapper = pdeathsigWrapper();
  const [file, argv] = wrapper ? [wrapper, ['--pdeathsig', 'KILL', '--', command, ...args]] : [command, args];
  // Opened by us and inherited as a descriptor, so it works whichever user the child runs as.
  const logFd = openSync(opts.logFile, 'a');
  let child;
  try {
    child = spawn(file, argv, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['ignore', logFd, logFd],
      // Own process group: stop()/the safety net can kill servers together with their workers
      // (postgres backends), and a terminal's Ctrl-C does not race our orderly shutdown.
      detached: true,
      // Node switches uid/gid before exec, so setpriv sets pdeathsig as the target user and the
      // kernel does not clear it again on the credential change.
      ...(opts.runAs ? { uid: opts.runAs.uid, gid: opts.runAs.gid } : {}),
    });
  } finally {
    closeSync(logFd);
  }
  // A forgotten stop() must not keep the test process alive; the exit safety net kills it instead.
  child.unref();

  let exitStatus: string | undefined;
  let exitCode: number | null | undefined;
  const untrack = child.pid === undefined ? () => false : trackProcessGroup(child.pid);
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exitCode = code;
      exitStatus = signal ? `killed by ${signal}` : `exited with code ${code}`;
      untrack();
      resolve();
    });
    child.once('error', (err) => {
      if (exitStatus !== undefined) return;
      exitStatus = `failed to start: ${err.message}`;
      exitCode = null;
      untrack();
      resolve();
    });
  });

  const stopSignal = opts.stopSignal ?? 'SIGTERM';
  const stopTimeoutMs = opts.stopTimeoutMs ?? 10_000;
  let stopping: Promise<void> | undefined;

  return {
    name,
    pid: child.pid,
    get exitStatus() {
      return exitStatus;
    },
    get exitCode() {
      return exitCode;
    },
    exited,
    logTail: (maxLines = 40) => readTail(opts.logFile, maxLines),
    stop() {
      stopping ??= (async () => {
        if (exitStatus !== undefined || child.pid === undefined) return;
        // The polite signal goes to the leader alone: postgres' postmaster shuts its backends down
        // in order. Only the escalation hits the whole group, while the unreaped leader still
        // holds the group id, so it cannot reach a stranger that reused the number.
        child.kill(stopSignal);
        if (await finishesWithin(exited, stopTimeoutMs)) return;
        killGroup(child.pid, 'SIGKILL');
        await exited;
      })();
      return stopping;
    },
  };
}

/** Runs a command to completion; a non-zero exit becomes an error carrying the output's tail. */
export async function runToCompletion(
  name: string,
  command: string,
  args: string[],
  opts: SpawnOptions & { timeoutMs?: number },
): Promise<void> {
  const proc = spawnManaged(name, command, args, opts);
  const timeoutMs = opts.timeoutMs ?? 120_000;
  if (!(await finishesWithin(proc.exited, timeoutMs))) {
    await proc.stop();
    throw new Error(`${name} did not finish within ${timeoutMs} ms\n${indent(proc.logTail())}`);
  }
  if (proc.exitCode !== 0) {
    throw new Error(`${name} ${proc.exitStatus}\n${indent(proc.logTail())}`);
  }
}

async function finishesWithin(promise: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true as const), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export function readTail(file: string, maxLines: number): string {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return '(no log)';
  }
  try {
    const size = fstatSync(fd).size;
    const length = Math.min(size, 16 * 1024);
    const buffer = Buffer.alloc(length);
    readSync(fd, buffer, 0, length, size - length);
    const lines = buffer.toString('utf8').split('\n');
    if (lines.at(-1) === '') lines.pop();
    return lines.slice(-maxLines).join('\n');
  } finally {
    closeSync(fd);
  }
}

export function indent(text: string): string {
  return text
    .split('\n')
    .map((line) => `    | ${line}`)
    .join('\n');
}

/**
 * Whether a process with this pid exists: a signal-0 probe. Only ESRCH means gone; EPERM (someone
 * else's process) and anything else count as alive, so callers never reap on doubt.
 */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}
