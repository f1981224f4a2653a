import type { TestProject } from 'vitest/node';
import { servicesToEnv, startTestEnvironment, type ServiceUrls } from '@walpurge/testing';

/**
 * Starts PostgreSQL, Redis and Kafka once for the whole integration run (env URLs → Testcontainers
 * → local processes, see @walpurge/testing) and hands their addresses to tests via
 * `inject('services')`. Suites isolate themselves inside the shared servers (uniqueName,
 * createIsolatedDatabase) instead of starting their own.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const env = await startTestEnvironment();
  const { databaseUrl, redisUrl, kafkaBrokers } = env.urls;
  if (databaseUrl === undefined || redisUrl === undefined || kafkaBrokers === undefined) {
    await env.stop();
    throw new Error('test environment started without all of postgres, redis and kafka');
  }
  const services: ServiceUrls = { databaseUrl, redisUrl, kafkaBrokers };
  project.provide('services', services);

  // Also as environment variables, inherited by the test workers forked after this: code that calls
  // startTestEnvironment() itself, or spawns a walpurge process, then reuses these servers.
  const exported = servicesToEnv(services);
  const previous = new Map(Object.keys(exported).map((key) => [key, process.env[key]]));
  Object.assign(process.env, exported);

  return async () => {
    for (const [key, value] of previous) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
    await env.stop();
  };
}
