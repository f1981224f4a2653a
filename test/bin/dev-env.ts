/**
 * Starts the integration test environment (PostgreSQL, Redis, Kafka) once and keeps it running, so
 * repeated `vitest run --project integration` loops reuse it instead of starting their own:
 *
 *   pnpm exec tsx --conditions=@walpurge/source test/bin/dev-env.ts [ENV_FILE]
 *   . ENV_FILE   # in another shell: exports WALPURGE_TEST_* for the global setup to pick up
 *
 * WALPURGE_TEST_PG_VERSION=13|14|15|16|17|18 picks the PostgreSQL major (docs/postgresql.md).
 * Ctrl-C (or SIGTERM) stops and removes everything it started, and so does its parent's exit.
 */
import { writeFile, rm } from 'node:fs/promises';
import { isAlive, servicesToEnv, startTestEnvironment } from '@walpurge/testing';

const envFile = process.argv[2] ?? '.walpurge/dev-env.sh';
const env = await startTestEnvironment();
const exports = Object.entries(servicesToEnv(env.urls))
  .map(([key, value]) => `export ${key}='${value}'`)
  .join('\n');
await writeFile(envFile, `${exports}\n`);
process.stdout.write(`${exports}\n\nwritten to ${envFile}; Ctrl-C stops the environment\n`);

let stopping = false;
const stop = async (): Promise<void> => {
  if (stopping) return;
  stopping = true;
  await env.stop();
  await rm(envFile, { force: true });
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
// A parent killed without running its cleanup (test-all.sh by SIGKILL, a CI runner's timeout)
// would leave us and everything we started running forever: our children's pdeathsig only fires
// when we die. So we stop once the parent is gone. Node caches process.ppid at startup, so the
// check is a signal-0 probe of that pid (ESRCH: gone); the interval also keeps us alive.
const parent = process.ppid;
setInterval(() => {
  if (!isAlive(parent)) void stop();
}, 1000);
