import { z } from 'zod';
import { POSTGRES_BINARY_VERSIONS } from './postgres-binaries.js';

/** Picks the PostgreSQL major the test environment runs (global setup, dev-env, dedicated servers). */
export const PG_VERSION_ENV_VAR = 'WALPURGE_TEST_PG_VERSION';

/** The system's packaged server (Debian bookworm's `postgresql`, installed by ensure-system-deps.sh). */
export const SYSTEM_POSTGRES_MAJOR = 15;

/** Every major the test environment can run: the system one plus the Maven Central builds. */
export const TEST_POSTGRES_MAJORS = [
  SYSTEM_POSTGRES_MAJOR,
  ...Object.keys(POSTGRES_BINARY_VERSIONS).map(Number),
].sort((a, b) => a - b);

type BinaryMajor = keyof typeof POSTGRES_BINARY_VERSIONS;

const Choice = z
  .string()
  .trim()
  .refine((value) => value === '' || TEST_POSTGRES_MAJORS.includes(Number(value)), {
    message: `must be one of ${TEST_POSTGRES_MAJORS.join(', ')}`,
  });

/**
 * The major WALPURGE_TEST_PG_VERSION asks for, undefined when unset or empty. Anything else is
 * refused: a typo must not silently test the default version.
 */
export function requestedPostgresMajor(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const parsed = Choice.safeParse(env[PG_VERSION_ENV_VAR] ?? '');
  if (!parsed.success) {
    throw new Error(
      `${PG_VERSION_ENV_VAR}=${JSON.stringify(env[PG_VERSION_ENV_VAR])}: ${parsed.error.issues[0]?.message ?? 'invalid'}`,
    );
  }
  return parsed.data === '' ? undefined : Number(parsed.data);
}

/** The requested major as a build to fetch, or undefined for the system server (unset, or 15). */
export function testPostgresVersion(env: NodeJS.ProcessEnv = process.env): BinaryMajor | undefined {
  const major = requestedPostgresMajor(env);
  return major === undefined || major === SYSTEM_POSTGRES_MAJOR ? undefined : (major as BinaryMajor);
}
