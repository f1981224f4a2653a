import { appendFileSync, chownSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { postgresRunAs, startLocalPostgres, type LocalPostgres } from './local-postgres.js';
import type { LogFn } from './log.js';
import { runToCompletion } from './processes.js';
import { makeTempDir } from './temp-dirs.js';

export interface LocalPrimaryWithStandby {
  primary: LocalPostgres;
  /** A hot standby streaming from `primary` (pg_is_in_recovery() is true). */
  standby: LocalPostgres;
  /** Stops both and removes their data. */
  stop(): Promise<void>;
}

/**
 * A primary and a hot standby of it, of the version startLocalPostgres picks, for tests of what a
 * server in recovery allows. The standby starts from a copy of the cleanly stopped primary rather
 * than pg_basebackup, which the Maven Central builds do not ship (they hold initdb, pg_ctl, postgres).
 */
export async function startLocalPrimaryWithStandby(
  opts: { log?: LogFn; standbySettings?: Record<string, string | number> } = {},
): Promise<LocalPrimaryWithStandby> {
  const runAs = postgresRunAs();
  const base = makeTempDir('pgpair', runAs);
  const primaryDir = join(base.path, 'primary');
  const standbyDir = join(base.path, 'standby');
  const started: LocalPostgres[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(started.map((server) => server.stop()));
    await base.remove();
  };
  try {
    const initial = await startLocalPostgres({ dataDir: primaryDir, log: opts.log });
    await initial.stop(); // a clean shutdown: the copy is consistent without a backup label
    await runToCompletion('cp', 'cp', ['-a', primaryDir, standbyDir], {
      cwd: base.path,
      logFile: join(base.path, 'cp.log'),
    });
    const signal = join(standbyDir, 'standby.signal');
    writeFileSync(signal, '');
    if (runAs) chownSync(signal, runAs.uid, runAs.gid);
    appendFileSync(
      join(standbyDir, 'postgresql.auto.conf'),
      `primary_conninfo = 'host=127.0.0.1 port=${initial.port} user=postgres'\n`,
    );
    // Same port: the standby's primary_conninfo names it.
    const primary = await startLocalPostgres({
      dataDir: primaryDir,
      port: initial.port,
      binDir: initial.binDir,
      log: opts.log,
    });
    started.push(primary);
    const standby = await startLocalPostgres({
      dataDir: standbyDir,
      binDir: initial.binDir,
      log: opts.log,
      settings: opts.standbySettings,
    });
    started.push(standby);
    let stopping: Promise<void> | undefined;
    return { primary, standby, stop: () => (stopping ??= stop()) };
  } catch (error) {
    await stop();
    throw error;
  }
}
