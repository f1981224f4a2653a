import { servicesFromEnv } from './from-env.js';
import { startLocalKafka } from './local-kafka.js';
import { startLocalPostgres } from './local-postgres.js';
import { requestedPostgresMajor } from './postgres-version-choice.js';
import { startLocalRedis } from './local-redis.js';
import { defaultLog, prefixed } from './log.js';
import { redactUrl } from './readiness.js';
import {
  dockerIsReachable,
  startContainerKafka,
  startContainerPostgres,
  startContainerRedis,
} from './testcontainers.js';
import type { Provider, ServiceName, ServiceUrls, StartedService } from './types.js';
import { describeError } from './wait-for.js';

export interface StartOptions {
  /** Each defaults to true. */
  postgres?: boolean;
  redis?: boolean;
  kafka?: boolean;
  /** Redis that keeps its data (appendonly, noeviction), as BullMQ needs. Env/Docker Redis: as is. */
  redisPersistent?: boolean;
  log?: (line: string) => void;
}

export interface TestEnvironment {
  urls: Partial<ServiceUrls>;
  providers: Record<string, Provider>;
  startupMs: number;
  /** Idempotent; stops every service this environment started (never env-provided ones). */
  stop(): Promise<void>;
}

const SERVICES: ServiceName[] = ['postgres', 'redis', 'kafka'];

/**
 * Real PostgreSQL, Redis and Kafka for tests. Per service, first match wins: a URL from the
 * environment, Testcontainers when a Docker engine answers, else local processes from binaries on
 * this machine. Services start in parallel; if any fails, the others are stopped again.
 *
 * `WALPURGE_TEST_PROVIDER=local|testcontainers` skips the Docker probe and forces the choice for
 * services without an env URL. `WALPURGE_TEST_PG_VERSION=13|14|15|16|17|18` picks the PostgreSQL
 * major started (15: the system's server); a database URL from the environment is used as it is.
 */
export async function startTestEnvironment(opts: StartOptions = {}): Promise<TestEnvironment> {
  const log = prefixed(opts.log ?? defaultLog);
  const started = Date.now();
  const fromEnv = servicesFromEnv();
  let dockerProbe: Promise<boolean> | undefined;
  const useDocker = (): Promise<boolean> => (dockerProbe ??= chooseDocker());

  const wanted = SERVICES.filter((name) => opts[name] ?? true);
  const results = await Promise.allSettled(
    wanted.map(async (name) => {
      const serviceStarted = Date.now();
      const service = await startService(name, fromEnv, useDocker, opts);
      log(
        `${name}: ${service.provider} in ${Date.now() - serviceStarted} ms (${describeUrls(service.urls)})`,
      );
      return [name, service] as const;
    }),
  );

  const services = new Map<ServiceName, StartedService>();
  const failures: string[] = [];
  results.forEach((result, i) => {
    if (result.status === 'fulfilled') services.set(result.value[0], result.value[1]);
    else failures.push(`${wanted[i]}: ${describeError(result.reason)}`);
  });
  if (failures.length > 0) {
    await Promise.allSettled([...services.values()].map((service) => service.stop()));
    throw new Error(`could not start the test environment\n${failures.join('\n')}`, {
      cause: results.find((r) => r.status === 'rejected')?.reason,
    });
  }

  const urls: Partial<ServiceUrls> = {};
  const providers: Record<string, Provider> = {};
  for (const [name, service] of services) {
    Object.assign(urls, service.urls);
    providers[name] = service.provider;
  }
  const startupMs = Date.now() - started;
  const summary = [...services].map(([name, service]) => `${name}=${service.provider}`).join(', ');
  log(`environment ready in ${startupMs} ms (${summary || 'no services'})`);

  let stopping: Promise<void> | undefined;
  return {
    urls,
    providers,
    startupMs,
    stop: () =>
      (stopping ??= (async () => {
        const stopStarted = Date.now();
        // Reverse of the start order, in parallel: nothing here depends on another service.
        const stopped = await Promise.allSettled(
          [...services.values()].reverse().map((service) => service.stop()),
        );
        const errors = stopped.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
        log(`environment stopped in ${Date.now() - stopStarted} ms`);
        if (errors.length > 0) {
          throw new Error(
            `stopping the test environment failed: ${errors.map((e) => describeError(e.reason)).join('; ')}`,
          );
        }
      })()),
  };
}

async function startService(
  name: ServiceName,
  fromEnv: Partial<ServiceUrls>,
  useDocker: () => Promise<boolean>,
  opts: StartOptions,
): Promise<StartedService> {
  const noop = async (): Promise<void> => {};
  switch (name) {
    case 'postgres':
      if (fromEnv.databaseUrl)
        return { provider: 'env', urls: { databaseUrl: fromEnv.databaseUrl }, stop: noop };
      // startLocalPostgres reads WALPURGE_TEST_PG_VERSION itself; a container needs the image named.
      if (await useDocker()) return startContainerPostgres(requestedPostgresMajor());
      return local(await startLocalPostgres({ log: opts.log }), (pg) => ({ databaseUrl: pg.url }));
    case 'redis':
      if (fromEnv.redisUrl) return { provider: 'env', urls: { redisUrl: fromEnv.redisUrl }, stop: noop };
      if (await useDocker()) return startContainerRedis({ persistent: opts.redisPersistent });
      return local(await startLocalRedis({ persistent: opts.redisPersistent, log: opts.log }), (redis) => ({
        redisUrl: redis.url,
      }));
    case 'kafka':
      if (fromEnv.kafkaBrokers)
        return { provider: 'env', urls: { kafkaBrokers: fromEnv.kafkaBrokers }, stop: noop };
      if (await useDocker()) return startContainerKafka();
      return local(await startLocalKafka({ log: opts.log }), (kafka) => ({ kafkaBrokers: kafka.brokers }));
  }
}

function local<T extends { stop(): Promise<void> }>(
  started: T,
  urls: (started: T) => Partial<ServiceUrls>,
): StartedService {
  return { provider: 'local', urls: urls(started), stop: () => started.stop() };
}

async function chooseDocker(): Promise<boolean> {
  const forced = process.env['WALPURGE_TEST_PROVIDER'];
  if (forced === 'local') return false;
  if (forced === 'testcontainers') return true;
  return dockerIsReachable();
}

function describeUrls(urls: Partial<ServiceUrls>): string {
  return [urls.databaseUrl, urls.redisUrl, urls.kafkaBrokers?.join(',')]
    .filter((url): url is string => url !== undefined)
    .map(redactUrl)
    .join(' ');
}
