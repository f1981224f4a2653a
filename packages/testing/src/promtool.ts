import { readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { findExecutable, isExecutable, isRoot } from './executables.js';
import { ensureCachedDirectory } from './maven-cache.js';
import { runToCompletion } from './processes.js';
import type { LogFn } from './log.js';

export interface PromtoolOptions {
  /** Defaults to $WALPURGE_CACHE_DIR, else ~/.cache/walpurge. */
  cacheDir?: string;
  log?: LogFn;
}

/**
 * Prometheus' `promtool` (rule checks and `promtool test rules`, the real rule engine), in order:
 * $WALPURGE_PROMTOOL, `promtool` on PATH, else extracted once per machine from Debian's `prometheus`
 * package: `apt-get download` fetches the .deb without installing the daemon, `dpkg-deb -x` unpacks
 * it and only usr/bin/promtool (a static Go binary) is kept in the cache.
 */
export async function ensurePromtool(opts: PromtoolOptions = {}): Promise<string> {
  const explicit = process.env['WALPURGE_PROMTOOL'];
  if (explicit) {
    if (!isExecutable(explicit)) throw new Error(`WALPURGE_PROMTOOL=${explicit} is not an executable`);
    return explicit;
  }
  const onPath = findExecutable('promtool');
  if (onPath) return onPath;
  const started = Date.now();
  let fetched = false;
  const dest = await ensureCachedDirectory({
    cacheDir: opts.cacheDir,
    name: 'promtool-deb',
    label: 'promtool',
    log: opts.log,
    fill: async (staging) => {
      opts.log?.(`promtool: fetching Debian's prometheus package with apt-get download (once per machine)`);
      await downloadPrometheusDeb(staging);
      const deb = readdirSync(staging).find((entry) => entry.endsWith('.deb'));
      if (!deb) throw new Error(`apt-get download prometheus left no .deb in ${staging}`);
      await runToCompletion('dpkg-deb -x', requireTool('dpkg-deb'), ['-x', deb, 'root'], {
        cwd: staging,
        logFile: join(staging, 'dpkg-deb.log'),
      });
      // Keep promtool alone (the package is ~110 MB unpacked, mostly the daemon).
      renameSync(join(staging, 'root', 'usr', 'bin', 'promtool'), join(staging, 'promtool'));
      rmSync(join(staging, 'root'), { recursive: true, force: true });
      rmSync(join(staging, deb), { force: true });
      fetched = true;
    },
  });
  const promtool = join(dest, 'promtool');
  if (!isExecutable(promtool)) throw new Error(`${dest} holds no promtool: remove it to fetch again`);
  if (fetched) opts.log?.(`promtool: extracted to ${promtool} in ${Date.now() - started} ms`);
  return promtool;
}

async function downloadPrometheusDeb(staging: string): Promise<void> {
  const aptGet = requireTool('apt-get');
  const download = (): Promise<void> =>
    runToCompletion('apt-get download prometheus', aptGet, ['download', 'prometheus'], {
      cwd: staging,
      logFile: join(staging, 'apt-get.log'),
      timeoutMs: 5 * 60_000,
    });
  try {
    await download();
  } catch (err) {
    // A fresh container has no package lists yet; only root may fetch them (as ensure-system-deps.sh).
    if (!isRoot()) {
      throw new Error(
        `apt-get download prometheus failed; run \`apt-get update\` as root or put promtool on PATH (or set WALPURGE_PROMTOOL): ${String(err)}`,
      );
    }
    await runToCompletion('apt-get update', aptGet, ['update', '-qq'], {
      cwd: staging,
      logFile: join(staging, 'apt-get-update.log'),
      timeoutMs: 5 * 60_000,
    });
    await download();
  }
}

function requireTool(name: string): string {
  const path = findExecutable(name);
  if (!path) {
    throw new Error(
      `${name} not found: promtool is fetched from Debian's prometheus package; on other systems put promtool on PATH or set WALPURGE_PROMTOOL`,
    );
  }
  return path;
}
