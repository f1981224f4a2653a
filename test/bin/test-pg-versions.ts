/**
 * `npm test`'s second pass: the version-dependent integration tests (pg-version-subset.ts) on every
 * PostgreSQL major other than the default, one vitest run per major.
 *
 *   pnpm exec tsx --conditions=@walpurge/source test/bin/test-pg-versions.ts [MAJOR...]
 *
 * Redis and Kafka are started once (or taken from WALPURGE_TEST_REDIS_URL / _KAFKA_BROKERS) and
 * shared by every run; each run's global setup starts only its own PostgreSQL (WALPURGE_TEST_PG_VERSION).
 * Builds missing from the cache are fetched from Maven Central first. Reports go to
 * test-results/vitest-pg<MAJOR>.json, read by summary.mjs; the exit status is 1 if any run failed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  ensurePostgresBinaries,
  PG_VERSION_ENV_VAR,
  SERVICE_ENV_VARS,
  servicesToEnv,
  startTestEnvironment,
  SYSTEM_POSTGRES_MAJOR,
  TEST_POSTGRES_MAJORS,
  testPostgresVersion,
} from '@walpurge/testing';
import { PG_VERSION_SUBSET } from './pg-version-subset.js';

// Paths below (the subset, vitest, the reports) are relative to the repository root.
process.chdir(fileURLToPath(new URL('../..', import.meta.url)));
const RESULTS = 'test-results';
const log = (line: string): void => void process.stdout.write(`[pg-versions] ${line}\n`);

const majors = process.argv.length > 2 ? process.argv.slice(2) : otherMajors();
// Resolved up front: refuses unknown majors before anything is deleted or fetched.
const versions = majors.map((major) => ({
  major,
  version: testPostgresVersion({ [PG_VERSION_ENV_VAR]: major }),
}));

mkdirSync(RESULTS, { recursive: true });
for (const stale of readdirSync(RESULTS).filter((name) => /^vitest-pg\d+\.json$/.test(name)))
  rmSync(join(RESULTS, stale));

// Fetched before anything starts, so a download shows as such and is not counted as test time.
for (const { major, version } of versions) {
  if (version === undefined) continue;
  const started = Date.now();
  const bin = await ensurePostgresBinaries(version, { log });
  log(`PostgreSQL ${major}: binaries ready in ${bin} (${Date.now() - started} ms)`);
}

const env = await startTestEnvironment({ postgres: false, log });
// Stopped (test-all.sh's exit trap, Ctrl-C): end the running vitest (its PostgreSQL dies with it)
// and stop Redis/Kafka if we started them, instead of leaving them to run on without us.
let interrupted: NodeJS.Signals | undefined;
let running: ChildProcess | undefined;
const interrupt = (signal: NodeJS.Signals): void => {
  interrupted ??= signal;
  running?.kill('SIGTERM');
};
process.on('SIGTERM', interrupt);
process.on('SIGINT', interrupt);
process.on('SIGHUP', interrupt);
const results: { major: string; ms: number; code: number }[] = [];
try {
  const shared = servicesToEnv(env.urls);
  for (const major of majors) {
    if (interrupted) break;
    log(`PostgreSQL ${major}: ${PG_VERSION_SUBSET.length} test files`);
    const started = Date.now();
    const code = await runVitest(major, shared);
    const ms = Date.now() - started;
    results.push({ major, ms, code });
    log(`PostgreSQL ${major}: ${code === 0 ? 'passed' : 'FAILED'} in ${Math.round(ms / 1000)} s`);
  }
} finally {
  await env.stop();
}
if (interrupted) {
  log(`stopped by ${interrupted}`);
  process.exit(128 + osConstants.signals[interrupted]);
}
const failed = results.filter((result) => result.code !== 0).map((result) => result.major);
log(
  failed.length === 0
    ? `every version passed (${results.map((r) => `${r.major}: ${Math.round(r.ms / 1000)} s`).join(', ')})`
    : `FAILED on PostgreSQL ${failed.join(', ')}`,
);
process.exit(failed.length === 0 ? 0 : 1);

function otherMajors(): string[] {
  return TEST_POSTGRES_MAJORS.filter((major) => major !== SYSTEM_POSTGRES_MAJOR).map(String);
}

function runVitest(major: string, shared: Record<string, string>): Promise<number> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...shared, [PG_VERSION_ENV_VAR]: major };
  // The database must be this version's own server, never one inherited from the caller.
  delete childEnv[SERVICE_ENV_VARS.databaseUrl];
  const args = [
    join('node_modules', 'vitest', 'vitest.mjs'),
    'run',
    '--project',
    'integration',
    ...PG_VERSION_SUBSET,
    '--reporter=default',
    '--reporter=json',
    `--outputFile.json=${join(RESULTS, `vitest-pg${major}.json`)}`,
  ];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { env: childEnv, stdio: 'inherit' });
    running = child;
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}
