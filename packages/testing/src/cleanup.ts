import { rmSync } from 'node:fs';

/**
 * Last-resort cleanup for everything this process started. Normal teardown goes through each
 * service's async `stop()`; this only runs when the process is leaving without having done that
 * (a crashed test run, Ctrl-C, a forgotten `stop()`), so it has to be synchronous: no awaiting in
 * an 'exit' handler.
 */
const processGroups = new Set<number>();
const directories = new Set<string>();
let installed = false;

export function trackProcessGroup(pid: number): () => void {
  installSafetyNet();
  processGroups.add(pid);
  return () => processGroups.delete(pid);
}

export function trackDirectory(dir: string): () => void {
  installSafetyNet();
  directories.add(dir);
  return () => directories.delete(dir);
}

export function cleanUpEverythingNow(): void {
  for (const pid of processGroups) killGroup(pid, 'SIGKILL');
  processGroups.clear();
  for (const dir of directories) {
    try {
      // Killed servers may still be flushing for a few ms, hence the retries.
      rmSync(dir, { recursive: true, force: true, maxRetries: 3, retryDelay: 50 });
    } catch {
      // Nothing left to report to at exit time; the next run's stale-dir sweep retries.
    }
  }
  directories.clear();
}

/** Signals a whole process group (our children are group leaders), falling back to the pid. */
export function killGroup(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    try {
      process.kill(pid, signal);
      return true;
    } catch {
      return false;
    }
  }
}

function installSafetyNet(): void {
  if (installed) return;
  installed = true;
  // Prepended, not appended: a listener that calls process.exit() (vitest's does, on SIGINT, SIGTERM
  // and even on 'exit') ends the process on the spot, skipping every listener registered after it.
  process.prependListener('exit', cleanUpEverythingNow);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      cleanUpEverythingNow();
      process.removeListener(signal, onSignal);
      // Listening to a signal disables Node's default "exit"; if nobody else (e.g. vitest) handles
      // it, re-raise it so the process still dies the way the sender intended.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    process.prependListener(signal, onSignal);
  }
}
