import { Redis } from 'ioredis';
import pg from 'pg';
import { createWriteClient, type WriteClient } from '@walpurge/client/write';
import { writeBehindLayout } from '@walpurge/write-behind';
import {
  WalpurgeConfig,
  pgConnectionOptions,
  queueRedisConnection,
  redisTlsOptions,
  type DatabaseSslConfig,
  type FlusherConfigInput,
} from '@walpurge/config';
import { createLogger, createMetricsRegistry, type Registry, type Service } from '@walpurge/core';
import { createIsolatedDatabase, uniqueName, waitFor, type IsolatedDatabase } from '@walpurge/testing';
import { createFlusher } from '../flusher.js';

/** Test table: `n` has a CHECK so a write can violate a constraint on purpose. */
export const ITEMS_DDL = `CREATE TABLE items (
  id int PRIMARY KEY,
  value text NOT NULL,
  n int CHECK (n >= 0),
  _walpurge_version bigint NOT NULL DEFAULT 0)`;

export interface FixtureOptions {
  databaseAdminUrl: string;
  cacheRedisUrl: string;
  queueRedisUrl: string;
  flusher?: Partial<FlusherConfigInput>;
  /** Use this database instead of creating an isolated one. */
  databaseUrl?: string;
  /** `database.ssl` of the config; the fixture's own pool connects with it too. */
  databaseSsl?: DatabaseSslConfig;
}

export interface Fixture {
  db: IsolatedDatabase | undefined;
  databaseUrl: string;
  prefix: string;
  cachePrefix: string;
  config: WalpurgeConfig;
  pool: pg.Pool;
  cache: Redis;
  queue: Redis;
  client: WriteClient;
  layout: ReturnType<typeof writeBehindLayout>;
  startFlusher(
    overrides?: Partial<FlusherConfigInput>,
  ): Promise<Service & { isReady(): boolean; registry: Registry }>;
  /** Waits until no write is pending (every accepted write reached PostgreSQL or failed). */
  drained(timeoutMs?: number): Promise<void>;
  /** Cached row at key (read-side entry layout: hash field v = marker byte + JSON). */
  cached(key: string): Promise<unknown>;
  close(): Promise<void>;
}

export function flusherConfig(
  options: FixtureOptions,
  databaseUrl: string,
  prefix: string,
  overrides: Partial<FlusherConfigInput> = {},
): WalpurgeConfig {
  return WalpurgeConfig.parse({
    database: { url: databaseUrl, ...(options.databaseSsl ? { ssl: options.databaseSsl } : {}) },
    redis: { url: options.cacheRedisUrl, keyPrefix: `${prefix}:cache:` },
    log: { level: 'warn' },
    flusher: {
      queueRedisUrl: options.queueRedisUrl,
      keyPrefix: `${prefix}:wb:`,
      batchDelayMs: 5,
      retryInitialMs: 50,
      retryMaxMs: 500,
      reconcileIntervalMs: 1_000,
      metricsIntervalMs: 200,
      lockDurationMs: 3_000,
      ...options.flusher,
      ...overrides,
    },
  });
}

export async function createFixture(options: FixtureOptions): Promise<Fixture> {
  const db = options.databaseUrl
    ? undefined
    : await createIsolatedDatabase(options.databaseAdminUrl, 'flusher');
  const databaseUrl = options.databaseUrl ?? db!.url;
  const prefix = uniqueName('wb');
  const config = flusherConfig(options, databaseUrl, prefix);
  const pool = new pg.Pool({ ...pgConnectionOptions(config.database!), max: 4 });
  pool.on('error', () => undefined);
  const cache = new Redis(options.cacheRedisUrl);
  const queue = new Redis(options.queueRedisUrl, {
    ...redisTlsOptions(queueRedisConnection(config.flusher!)),
    maxRetriesPerRequest: null,
  });
  const layout = writeBehindLayout(config.flusher!.keyPrefix);
  const client = createWriteClient({
    cacheRedis: cache,
    queueRedis: queue,
    database: pool,
    queuePrefix: config.flusher!.keyPrefix,
    queueName: config.flusher!.queueName,
    cacheKeyPrefix: config.redis!.keyPrefix,
    keys: (table, row) => [`item:${String(row['id'])}`],
  });
  const services: Service[] = [];
  const logger = createLogger({ level: process.env['LOG_LEVEL'] ?? 'warn', pretty: false });

  return {
    db,
    databaseUrl,
    prefix,
    cachePrefix: config.redis!.keyPrefix,
    config,
    pool,
    cache,
    queue,
    client,
    layout,
    async startFlusher(overrides = {}) {
      const registry = createMetricsRegistry({ defaultMetrics: false });
      const flusher = createFlusher({
        config: flusherConfig(options, databaseUrl, prefix, overrides),
        logger,
        registry,
      });
      await flusher.start(new AbortController().signal);
      services.push(flusher);
      return Object.assign(flusher, { registry });
    },
    async drained(timeoutMs = 60_000) {
      await waitFor('write-behind queue to drain', async () => (await queue.zcard(layout.index)) === 0, {
        timeoutMs,
        intervalMs: 50,
      });
    },
    async cached(key) {
      const payload = await cache.hgetBuffer(`${config.redis!.keyPrefix}${key}`, 'v');
      if (!payload) return undefined;
      return JSON.parse(payload.subarray(1).toString('utf8')) as unknown;
    },
    async close() {
      for (const service of services.reverse()) await service.stop().catch(() => undefined);
      await client.close();
      await cache.quit();
      await queue.quit();
      await pool.end();
      await db?.drop();
    },
  };
}

export async function metricValue(
  registry: Registry,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const metric = await registry.getSingleMetric(name)?.get();
  const value = metric?.values.find((v) =>
    Object.entries(labels).every(([key, want]) => String(v.labels[key]) === want),
  );
  return value?.value ?? 0;
}
