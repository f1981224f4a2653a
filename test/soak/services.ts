import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import { startSoakKafka, type SoakKafka } from './soak-kafka.js';
import {
  freePort,
  makeTempDir,
  startFreezableProxy,
  startLocalPostgres,
  startLocalRedis,
  type FreezableProxy,
  type LocalPostgres,
  type LocalRedis,
  type TempDir,
} from '@walpurge/testing';

/**
 * The soak's own PostgreSQL, Kafka, cache Redis and queue Redis: never the shared test services,
 * since the soak restarts them. Every client (roles, workload, observer) reaches each one through a
 * freezable TCP proxy, so a frozen link can be injected, and a restart on the same port leaves
 * every client pointed at the proxy.
 */
export type ServiceName = 'postgres' | 'kafka' | 'cache-redis' | 'queue-redis';

export interface SoakServices {
  /** URLs through the proxies: what every client is given. */
  readonly databaseUrl: string;
  readonly kafkaBrokers: string[];
  readonly cacheRedisUrl: string;
  readonly queueRedisUrl: string;
  freeze(service: ServiceName): void;
  thaw(service: ServiceName): void;
  /**
   * Stops the service and starts it again on the same port (PostgreSQL: fast shutdown, same data;
   * Kafka: the next broker in turn, a rolling restart). Resolves to what was done.
   */
  restart(service: 'postgres' | 'kafka' | 'cache-redis'): Promise<string>;
  stop(): Promise<void>;
}

export async function startSoakServices(log: (line: string) => void): Promise<SoakServices> {
  // PostgreSQL keeps its cluster here across restarts; the postgres user must be able to reach it.
  const pgHome: TempDir = makeTempDir('soak-pg');
  chmodSync(pgHome.path, 0o755);
  const pgDataDir = join(pgHome.path, 'data');
  const pgPort = await freePort();
  const postgresProxy = await startFreezableProxy({ host: '127.0.0.1', port: pgPort });
  let postgres: LocalPostgres | undefined;
  let kafka: SoakKafka | undefined;
  let cacheRedis: LocalRedis | undefined;
  let queueRedis: LocalRedis | undefined;
  const stopAll = async (): Promise<void> => {
    await Promise.allSettled([postgres?.stop(), kafka?.stop(), cacheRedis?.stop(), queueRedis?.stop()]);
    await postgresProxy.close();
    await pgHome.remove();
  };
  const startPostgres = (): Promise<LocalPostgres> =>
    startLocalPostgres({ dataDir: pgDataDir, port: pgPort, settings: { max_connections: 300 } });
  try {
    const started = Date.now();
    [postgres, kafka, cacheRedis, queueRedis] = await Promise.all([
      startPostgres(),
      startSoakKafka(),
      startLocalRedis(),
      startLocalRedis({ persistent: true }),
    ]);
    log(`services up in ${Date.now() - started} ms`);
  } catch (error) {
    await stopAll();
    throw error;
  }
  const cacheProxy = await startFreezableProxy({ host: '127.0.0.1', port: cacheRedis.port });
  const queueProxy = await startFreezableProxy({ host: '127.0.0.1', port: queueRedis.port });
  const byName: Record<ServiceName, FreezableProxy[]> = {
    postgres: [postgresProxy],
    kafka: kafka.proxies,
    'cache-redis': [cacheProxy],
    'queue-redis': [queueProxy],
  };
  const cacheRedisPort = cacheRedis.port;
  const ensure = <T>(service: T | undefined): T => {
    if (service === undefined) throw new Error('soak services already stopped');
    return service;
  };

  return {
    databaseUrl: postgresProxy.urlFor(ensure(postgres).url),
    kafkaBrokers: kafka.brokers,
    cacheRedisUrl: cacheProxy.urlFor(cacheRedis.url),
    queueRedisUrl: queueProxy.urlFor(queueRedis.url),
    freeze: (service) => byName[service].forEach((proxy) => proxy.freeze()),
    thaw: (service) => byName[service].forEach((proxy) => proxy.thaw()),
    async restart(service) {
      if (service === 'kafka') return ensure(kafka).restartNext();
      if (service === 'postgres') {
        await ensure(postgres).stop();
        postgres = await startPostgres();
        return 'fast shutdown, start';
      }
      // A cache restarts empty (no persistence): an empty cache is a consistent one.
      await ensure(cacheRedis).stop();
      cacheRedis = await startLocalRedis({ port: cacheRedisPort });
      return 'stop, start (empty)';
    },
    async stop() {
      await Promise.allSettled([cacheProxy.close(), queueProxy.close()]);
      await stopAll();
    },
  };
}
