import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { findExecutable } from './executables.js';
import { runToCompletion } from './processes.js';
import { sleep } from './wait-for.js';
import type { LogFn } from './log.js';

const LOCK_STALE_MS = 20 * 60_000;
export const FETCH_TIMEOUT_MS = 15 * 60_000;

export function walpurgeCacheDir(): string {
  return process.env['WALPURGE_CACHE_DIR'] || join(homedir(), '.cache', 'walpurge');
}

export interface CachedDirectoryOptions {
  /** Parent of the cached directory. */
  cacheDir: string;
  /** Name of the cached directory inside `cacheDir`. */
  name: string;
  /** For log and error lines ("kafka", "postgres 17"). */
  label: string;
  log?: LogFn;
  /** Fills the staging directory; it becomes `<cacheDir>/<name>` only if this resolves. */
  fill(staging: string): Promise<void>;
}

/**
 * `<cacheDir>/<name>`, filled once per machine by `fill` and reused by every later run.
 *
 * Concurrent runs: one takes a lock directory and fills a private staging directory that is
 * renamed into place only when complete, so a reader sees either nothing or a full directory;
 * the others wait for the marker file.
 */
export async function ensureCachedDirectory(opts: CachedDirectoryOptions): Promise<string> {
  const dest = join(opts.cacheDir, opts.name);
  const marker = join(dest, '.complete');
  if (existsSync(marker)) return dest;

  mkdirSync(opts.cacheDir, { recursive: true });
  const lock = `${dest}.lock`;
  const deadline = Date.now() + FETCH_TIMEOUT_MS + 60_000;
  let announcedWait = false;
  while (!tryLock(lock)) {
    if (existsSync(marker)) return dest;
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for another process to fetch ${opts.label} (lock ${lock})`);
    if (!announcedWait) {
      opts.log?.(`${opts.label}: waiting for another process fetching into ${dest}`);
      announcedWait = true;
    }
    await sleep(1_000);
  }
  try {
    if (existsSync(marker)) return dest;
    removeAbandonedStagingDirs(opts.cacheDir, `${opts.name}.staging-`);
    const staging = mkdtempSync(`${dest}.staging-`);
    try {
      await opts.fill(staging);
      writeFileSync(join(staging, '.complete'), `${new Date().toISOString()}\n`);
      // A dest without marker is the remains of an interrupted pre-rename layout; we hold the lock.
      rmSync(dest, { recursive: true, force: true });
      renameSync(staging, dest);
    } finally {
      rmSync(staging, { recursive: true, force: true });
    }
    return dest;
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

/** Runs `mvn -B <args>` in `cwd`, its output kept in `<cwd>/mvn.log` for the error message. */
export async function runMaven(args: string[], cwd: string, purpose: string): Promise<void> {
  const mvn = process.env['WALPURGE_MVN'] || findExecutable('mvn');
  if (!mvn) {
    throw new Error(
      `mvn (Apache Maven) not found on PATH; it is needed once to fetch ${purpose} (apt-get install maven)`,
    );
  }
  await runToCompletion(
    `mvn ${args.find((arg) => !arg.startsWith('-')) ?? ''}`.trim(),
    mvn,
    ['-B', '--no-transfer-progress', ...args],
    { cwd, logFile: join(cwd, 'mvn.log'), timeoutMs: FETCH_TIMEOUT_MS },
  );
}

// Left behind by a fetch whose process died; only the lock holder may judge that.
function removeAbandonedStagingDirs(cacheDir: string, prefix: string): void {
  for (const entry of readdirSync(cacheDir)) {
    if (entry.startsWith(prefix)) rmSync(join(cacheDir, entry), { recursive: true, force: true });
  }
}

/** mkdir is atomic: whoever creates the directory owns the lock. Stale locks are broken. */
function tryLock(lock: string): boolean {
  try {
    mkdirSync(lock);
    writeFileSync(join(lock, 'owner'), `${process.pid}\n`);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  if (isStale(lock)) {
    rmSync(lock, { recursive: true, force: true });
    return tryLock(lock);
  }
  return false;
}

function isStale(lock: string): boolean {
  try {
    if (Date.now() - statSync(lock).mtimeMs > LOCK_STALE_MS) return true;
    const owner = Number(readFileSync(join(lock, 'owner'), 'utf8').trim());
    if (!Number.isInteger(owner) || owner <= 0) return false;
    process.kill(owner, 0);
    return false;
  } catch (err) {
    // ESRCH: the owner died mid-fetch. ENOENT: the owner file is not written yet; wait a little.
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
