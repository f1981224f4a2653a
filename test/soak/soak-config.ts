import type { SoakServices } from './services.js';

/** Tables, key templates and names of one soak run, shared by the roles' configs and the workload. */
export const SQL_TABLE = 'public.items';
export const WRITE_BEHIND_TABLE = 'public.wb_items';
/** The SDK entries of rows written through SQL; the plain cache-aside entries of the same rows. */
export const SDK_KEY = 'sdk:item:{id}';
export const PLAIN_KEY = 'plain:item:{id}';
/** Rows written through writeBehind (the flusher's table), read through the SDK. */
export const WRITE_BEHIND_KEY = 'wb:item:{id}';
export const VERSION_COLUMN = 'version';
/** flusher.versionColumn: a write-behind entry's `wv` is the row's version for the observer. */
export const WRITE_BEHIND_VERSION_COLUMN = '_walpurge_version';

export const keyOf = (template: string, id: number): string => template.replace('{id}', String(id));

export interface SoakNames {
  /** Slot, publication, topic, consumer groups, flusher queue and replication origin start with it. */
  readonly name: string;
  /** redis.keyPrefix of every entry of this run. */
  readonly prefix: string;
}

export interface ConfigOptions {
  databaseUrl: string;
  /** The SDK key template left out of the rule: what `--broken` gives the invalidators. */
  withoutKey?: string;
  /** When the observer checks each change after its commit, ms. */
  timescalesMs: readonly number[];
  /** How many confirmed inconsistencies the observer's report keeps (the most recent). */
  reportedInconsistencies: number;
}

/**
 * The walpurge.yaml of the roles (as JSON, which is YAML). One file for all of them except in broken
 * mode, where the invalidators' rule lacks the SDK key while the observer's still derives it: the
 * observer must then find those entries stale.
 */
export function soakConfig(
  services: SoakServices,
  names: SoakNames,
  options: ConfigOptions,
): Record<string, unknown> {
  const sqlKeys = [SDK_KEY, PLAIN_KEY].filter((key) => key !== options.withoutKey);
  return {
    transport: 'kafka',
    database: {
      url: options.databaseUrl,
      slot: names.name,
      publication: names.name,
      statusIntervalMs: 500,
    },
    kafka: {
      brokers: services.kafkaBrokers,
      topic: names.name,
      deadLetterTopic: `${names.name}_dlq`,
      consumerGroup: names.name,
      partitions: 4,
      // As production runs it: a broker restart moves leadership, and acks=all still needs two copies.
      replicationFactor: 3,
      minInsyncReplicas: 2,
    },
    redis: { url: services.cacheRedisUrl, keyPrefix: names.prefix },
    http: { host: '127.0.0.1' },
    // A killed invalidator's partitions go to the other one after this long: part of every purge's
    // worst-case delay, so short enough to stay within the 10 s timescale.
    invalidator: { sessionTimeoutMs: 6_000, retryMaxMs: 1_000, coalesceWindowMs: 5 },
    flusher: {
      queueRedisUrl: services.queueRedisUrl,
      keyPrefix: `${names.prefix}wb:`,
      queueName: `${names.name}_flush`,
      replicationOrigin: names.name,
      tables: [WRITE_BEHIND_TABLE],
      versionColumn: WRITE_BEHIND_VERSION_COLUMN,
      batchDelayMs: 5,
      lockDurationMs: 5_000,
    },
    inspect: {
      sampleRate: 1,
      timescalesMs: options.timescalesMs,
      consumerGroup: `${names.name}_inspector`,
      maxReportedInconsistencies: options.reportedInconsistencies,
    },
    log: { level: 'warn' },
    rules: [
      { table: SQL_TABLE, version: VERSION_COLUMN, redis: { keys: sqlKeys } },
      {
        table: WRITE_BEHIND_TABLE,
        version: WRITE_BEHIND_VERSION_COLUMN,
        redis: { keys: [WRITE_BEHIND_KEY] },
      },
    ],
  };
}

/** The tables the workload writes: a version counter on each, bumped by every write. */
export const SCHEMA_SQL = `
CREATE TABLE items (id int PRIMARY KEY, ${VERSION_COLUMN} bigint NOT NULL DEFAULT 0, payload text NOT NULL);
CREATE TABLE wb_items (id int PRIMARY KEY, payload text NOT NULL,
                       ${WRITE_BEHIND_VERSION_COLUMN} bigint NOT NULL DEFAULT 0);
`;
