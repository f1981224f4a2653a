import {
  chownSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { trackDirectory } from './cleanup.js';
import type { SystemUser } from './executables.js';
import { isAlive } from './processes.js';

const PREFIX = 'walpurge-';
const OWNER_FILE = '.walpurge-owner-pid';
let swept = false;

export interface TempDir {
  path: string;
  remove(): Promise<void>;
  /** Leave it on disk, also at process exit (for a post-mortem). */
  keep(): void;
}

/**
 * A fresh directory under the OS temp dir, removed by `remove()` or, failing that, when this
 * process exits. `owner` hands it to another user (Postgres refuses to run as root).
 */
export function makeTempDir(label: string, owner?: SystemUser): TempDir {
  if (!swept) {
    swept = true;
    sweepStaleTempDirs();
  }
  const path = mkdtempSync(join(tmpdir(), `${PREFIX}${label}-`));
  writeFileSync(join(path, OWNER_FILE), `${process.pid}\n`);
  if (owner) chownSync(path, owner.uid, owner.gid);
  const untrack = trackDirectory(path);
  return {
    path,
    async remove() {
      untrack();
      await rm(path, { recursive: true, force: true, maxRetries: 3, retryDelay: 50 });
    },
    keep() {
      untrack();
    },
  };
}

/**
 * A test run killed with SIGKILL never gets to clean up. Its servers die with it (pdeathsig), but
 * its temp dirs stay; the next run removes those whose owning process is gone, first killing any
 * survivor still working inside one (found by its cwd, which pid reuse cannot fake).
 */
export function sweepStaleTempDirs(): void {
  const root = tmpdir();
  let entries: string[];
  try {
    entries = readdirSync(root).filter((entry) => entry.startsWith(PREFIX));
  } catch {
    return;
  }
  const stale: string[] = [];
  for (const entry of entries) {
    const dir = join(root, entry);
    let ownerPid: number;
    try {
      ownerPid = Number(readFileSync(join(dir, OWNER_FILE), 'utf8').trim());
    } catch {
      continue; // being created right now by someone else, or not ours
    }
    if (Number.isInteger(ownerPid) && ownerPid > 0 && !isAlive(ownerPid)) stale.push(dir);
  }
  if (stale.length === 0) return;
  killProcessesWorkingIn(stale);
  for (const dir of stale) {
    try {
      rmSync(dir, { recursive: true, force: true, maxRetries: 3, retryDelay: 50 });
    } catch {
      // best effort
    }
  }
}

function killProcessesWorkingIn(dirs: string[]): void {
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((entry) => /^\d+$/.test(entry));
  } catch {
    return; // not Linux: nothing to inspect
  }
  for (const pid of pids) {
    let cwd: string;
    try {
      cwd = readlinkSync(`/proc/${pid}/cwd`);
    } catch {
      continue;
    }
    if (dirs.some((dir) => cwd === dir || cwd.startsWith(`${dir}/`))) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}
