import {
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  realpathSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import {
  findExecutable,
  isExecutable,
  isRoot,
  lookupSystemUser,
  versionedSubdirsDescending,
} from './executables.js';
import type { SystemUser } from './executables.js';
import { defaultLog, prefixed, type LogFn } from './log.js';
import { freePort } from './ports.js';
import { ensurePostgresBinaries, type PostgresVersion } from './postgres-binaries.js';
import { testPostgresVersion } from './postgres-version-choice.js';
import { indent, runToCompletion, spawnManaged } from './processes.js';
import { makeTempDir } from './temp-dirs.js';
import { waitForPostgres } from './readiness.js';
import { describeError } from './wait-for.js';

export interface LocalPostgresOptions {
  /**
   * Keep the cluster here (initdb'd on first use, reused afterwards) instead of a fresh temp dir.
   * Never deleted by `stop()`.
   */
  dataDir?: string;
  port?: number;
  /** Leave the temp data dir on disk after `stop()`, for a post-mortem. */
  keepData?: boolean;
  log?: LogFn;
  /** Directory holding `initdb` and `postgres`; found automatically when omitted. */
  binDir?: string;
  /**
   * Run this PostgreSQL version instead of the system one: a major (13, 14, 16, 17, 18) or an exact
   * build ("17.6.0"), fetched from Maven Central with mvn once per machine (see ensurePostgresBinaries).
   * Without it (and without binDir): $WALPURGE_TEST_PG_VERSION, else the system's server, so tests
   * that start a dedicated cluster run the version the whole run was asked for.
   */
  version?: PostgresVersion;
  startTimeoutMs?: number;
  /** Extra `-c name=value` server settings, applied after (so overriding) the defaults. */
  settings?: Record<string, string | number>;
  /**
   * After initdb, set the cluster's next OID (`pg_resetwal -o`): objects created afterwards get OIDs
   * from here, e.g. above 2^31 to test code that reads OIDs as signed integers.
   */
  nextOid?: number;
  /**
   * Serve TLS (ssl = on) with these PEM files (copied beside the cluster, readable by the server
   * only); `caFile` is what client certificates must chain to. Plain connections keep working.
   */
  tls?: { certFile: string; keyFile: string; caFile?: string };
  /** pg_hba.conf lines put before the trust-everything ones (first match wins), e.g. `hostssl … cert`. */
  hbaPrefix?: string;
}

export interface LocalPostgres {
  /** Superuser `postgres`, trust auth, database `postgres`. */
  url: string;
  port: number;
  dataDir: string;
  logFile: string;
  /** Where its `initdb` and `postgres` are (the client tools of the same version sit beside them). */
  binDir: string;
  stop(): Promise<void>;
}

const SUPERUSER = 'postgres';

// What the listener needs (logical decoding, slots, walsenders) plus durability shortcuts that only
// cost anything on a crash, which for a throwaway test cluster is irrelevant. synchronous_commit
// stays on: walsenders only ship flushed WAL, so turning it off would delay every CDC event.
const DEFAULT_SETTINGS: Record<string, string | number> = {
  wal_level: 'logical',
  max_replication_slots: 20,
  max_wal_senders: 20,
  max_connections: 200,
  fsync: 'off',
  full_page_writes: 'off',
  TimeZone: 'UTC',
};

const TRUST_EVERYTHING_HBA = `# written by @walpurge/testing: a private, loopback-only test cluster
local   all          all                  trust
host    all          all   127.0.0.1/32   trust
host    all          all   ::1/128        trust
local   replication  all                  trust
host    replication  all   127.0.0.1/32   trust
host    replication  all   ::1/128        trust
`;

export async function startLocalPostgres(opts: LocalPostgresOptions = {}): Promise<LocalPostgres> {
  const log = prefixed(opts.log ?? defaultLog);
  if (opts.binDir !== undefined && opts.version !== undefined)
    throw new Error('startLocalPostgres: pass binDir or version, not both');
  const version = opts.binDir === undefined ? (opts.version ?? testPostgresVersion()) : undefined;
  const binDir =
    opts.binDir ??
    (version !== undefined ? await ensurePostgresBinaries(version, { log }) : findPostgresBinDir());
  // initdb and postgres refuse to run as root; as root we hand everything to the postgres user.
  const runAs = postgresRunAs();

  for (let attempt = 1; ; attempt++) {
    const port = opts.port ?? (await freePort());
    try {
      return await startOnce(binDir, port, runAs, opts, log);
    } catch (err) {
      // Someone took the port between our probe and postgres binding it: pick another.
      if (opts.port === undefined && attempt < 3 && /already in use/i.test(describeError(err))) continue;
      throw err;
    }
  }
}

async function startOnce(
  binDir: string,
  port: number,
  runAs: SystemUser | undefined,
  opts: LocalPostgresOptions,
  log: LogFn,
): Promise<LocalPostgres> {
  // Also the socket directory: unix socket paths are limited to ~100 bytes, so it must stay short
  // even when the caller's dataDir is deep.
  const base = makeTempDir('pg', runAs);
  const dataDir = opts.dataDir ?? join(base.path, 'data');
  const logFile = join(base.path, 'postgres.log');
  const removeBase = async (): Promise<void> => {
    if (opts.keepData && opts.dataDir === undefined) {
      base.keep();
      log(`postgres: keeping ${base.path}`);
    } else {
      await base.remove();
    }
  };

  try {
    if (!existsSync(join(dataDir, 'PG_VERSION'))) {
      if (opts.dataDir !== undefined) {
        mkdirSync(dataDir, { recursive: true, mode: 0o700 });
        if (runAs) chownSync(dataDir, runAs.uid, runAs.gid);
      }
      const initdbStarted = Date.now();
      await runToCompletion(
        'initdb',
        join(binDir, 'initdb'),
        ['-D', dataDir, '-U', SUPERUSER, '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync'],
        { cwd: base.path, logFile: join(base.path, 'initdb.log'), runAs, timeoutMs: 120_000 },
      );
      log(`postgres: initdb ${dataDir} took ${Date.now() - initdbStarted} ms`);
      if (opts.nextOid !== undefined) {
        await runToCompletion(
          'pg_resetwal',
          // binDir may hold only symlinks to initdb and postgres: pg_resetwal sits beside their target.
          join(dirname(realpathSync(join(binDir, 'initdb'))), 'pg_resetwal'),
          ['-o', String(opts.nextOid), '-D', dataDir],
          { cwd: base.path, logFile: join(base.path, 'pg_resetwal.log'), runAs, timeoutMs: 60_000 },
        );
      }
      writeFileSync(join(dataDir, 'pg_hba.conf'), `${opts.hbaPrefix ?? ''}${TRUST_EVERYTHING_HBA}`);
      if (runAs) chownSync(join(dataDir, 'pg_hba.conf'), runAs.uid, runAs.gid);
    }

    const settings = {
      ...DEFAULT_SETTINGS,
      listen_addresses: '127.0.0.1',
      unix_socket_directories: base.path,
      ...(opts.tls ? tlsSettings(opts.tls, base.path, runAs) : {}),
      ...opts.settings,
    };
    const args = ['-D', dataDir, '-p', String(port)];
    for (const [name, value] of Object.entries(settings)) args.push('-c', `${name}=${value}`);

    const proc = spawnManaged('postgres', join(binDir, 'postgres'), args, {
      cwd: base.path,
      logFile,
      runAs,
      // SIGINT is "fast shutdown": abort sessions, no waiting for clients to disconnect.
      stopSignal: 'SIGINT',
      stopTimeoutMs: 10_000,
    });

    const url = `postgres://${SUPERUSER}@127.0.0.1:${port}/postgres`;
    try {
      await waitForPostgres(url, opts.startTimeoutMs ?? 60_000, () => proc.exitStatus);
    } catch (err) {
      await proc.stop();
      throw new Error(
        `local PostgreSQL (${binDir}) did not become ready: ${describeError(err)}\n${indent(proc.logTail())}`,
        { cause: err },
      );
    }

    let stopped: Promise<void> | undefined;
    return {
      url,
      port,
      dataDir,
      logFile,
      binDir,
      stop: () =>
        (stopped ??= (async () => {
          await proc.stop();
          await removeBase();
        })()),
    };
  } catch (err) {
    await removeBase();
    throw err;
  }
}

/** Copies the TLS files where the server reads them: it refuses a key others can read. */
function tlsSettings(
  tls: NonNullable<LocalPostgresOptions['tls']>,
  dir: string,
  runAs: SystemUser | undefined,
): Record<string, string> {
  const copies = { ssl_cert_file: tls.certFile, ssl_key_file: tls.keyFile, ssl_ca_file: tls.caFile };
  const settings: Record<string, string> = { ssl: 'on' };
  for (const [setting, source] of Object.entries(copies)) {
    if (source === undefined) continue;
    const target = join(dir, `${setting}.pem`);
    copyFileSync(source, target);
    chmodSync(target, 0o600);
    if (runAs) chownSync(target, runAs.uid, runAs.gid);
    settings[setting] = target;
  }
  return settings;
}

/** The `postgres` system user as root (initdb and postgres refuse to run as root), else undefined. */
export function postgresRunAs(): SystemUser | undefined {
  return isRoot() ? requirePostgresUser() : undefined;
}

/** PATH first (an explicit choice), else the highest Debian/Ubuntu packaged version. */
export function findPostgresBinDir(): string {
  const fromEnv = process.env['WALPURGE_PG_BIN_DIR'];
  if (fromEnv) return fromEnv;
  const initdb = findExecutable('initdb');
  if (initdb) {
    const dir = initdb.slice(0, initdb.length - '/initdb'.length);
    if (isExecutable(join(dir, 'postgres'))) return dir;
  }
  const candidates = [
    ...versionedSubdirsDescending('/usr/lib/postgresql').map((dir) => join(dir, 'bin')),
    '/usr/local/pgsql/bin',
  ];
  for (const dir of candidates) {
    if (isExecutable(join(dir, 'initdb')) && isExecutable(join(dir, 'postgres'))) return dir;
  }
  throw new Error(
    'no PostgreSQL server binaries found (initdb + postgres on PATH or under /usr/lib/postgresql/*/bin); ' +
      'install them (apt-get install postgresql), set WALPURGE_PG_BIN_DIR, or set WALPURGE_TEST_DATABASE_URL',
  );
}

function requirePostgresUser(): SystemUser {
  const user = lookupSystemUser('postgres');
  if (!user) {
    throw new Error(
      'running as root, and PostgreSQL refuses to run as root: create a "postgres" system user ' +
        '(useradd --system postgres), run the tests as a normal user, or set WALPURGE_TEST_DATABASE_URL',
    );
  }
  return user;
}
