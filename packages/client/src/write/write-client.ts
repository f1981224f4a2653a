import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { connectCacheRedis, type CacheRedis } from '../read/cache-redis.js';
import pg from 'pg';
import { ErrorCode, WalpurgeError, errorMessage } from '@walpurge/core';
import type { WalpurgeConfig } from '@walpurge/config';
import type { Serializer } from '../read/serializer.js';
import { CacheWriter } from './cache-writer.js';
import { DEFAULT_FLUSH_ATTEMPTS, flushJobOptions } from './job-options.js';
import {
  DEFAULT_VERSION_COLUMN,
  DEFAULT_WRITE_BEHIND_PREFIX,
  DEFAULT_WRITE_BEHIND_QUEUE,
  FLUSH_JOB_NAME,
  qualifyWriteTable,
  rowIdOf,
  stableJson,
  writeBehindLayout,
  type FlushJobData,
  type WriteBehindLayout,
} from './layout.js';
import { WriteScript, stringArrayReply } from './lua.js';
import { ACCEPT_WRITE_SCRIPT, NEXT_VERSION_SCRIPT } from './scripts.js';
import {
  checkRowAgainstShape,
  deleteStatement,
  describeWriteTable,
  tombstoneTableDdl,
  upsertStatement,
  type TableShape,
} from './sql.js';
import { rowTargetsFromRules } from '../rules/row-targets.js';

const acceptWrite = new WriteScript(ACCEPT_WRITE_SCRIPT);
const nextVersion = new WriteScript(NEXT_VERSION_SCRIPT);

export type WriteRow = Record<string, unknown>;

export interface WriteClientOptions {
  /** The cache Redis (the one the invalidator purges). */
  /** The cache Redis, or a Redis Cluster (`redis.cluster`). */
  cacheRedis: CacheRedis;
  /** The queue Redis: must keep data (noeviction + AOF). May be the same server in tests. */
  queueRedis: Redis;
  /** Needed for writeThrough/deleteThrough only. */
  database?: pg.Pool;
  /** flusher.keyPrefix. */
  queuePrefix?: string;
  /** flusher.queueName. */
  queueName?: string;
  /** redis.keyPrefix. */
  cacheKeyPrefix?: string;
  versionColumn?: string;
  tombstoneTable?: string;
  /** Primary-key columns per table ('schema.table'); default ['id']. */
  primaryKeys?: Record<string, readonly string[]>;
  /** Cache keys of a row when a call gives none (e.g. rendered from the rules file). */
  keys?: (table: string, row: WriteRow) => readonly string[];
  /** Soft TTL of the cache entries written, ms (default 1 hour). */
  cacheTtlMs?: number;
  serializer?: Serializer;
  /** flusher.maxAttempts. */
  flushAttempts?: number;
  /** Connections this client created and must close. */
  owned?: { redis?: CacheRedis[]; pool?: pg.Pool };
}

export interface WriteOptions {
  /** Cache keys holding this row (without redis.keyPrefix). */
  keys?: readonly string[];
  /** Primary-key columns, when not configured for the table. */
  primaryKey?: readonly string[];
}

export interface WriteResult {
  table: string;
  rowId: string;
  /** The row's new version (also stored in the version column). */
  version: string;
  /** Cache keys that now hold this version. */
  cacheKeysWritten: number;
}

export interface WriteThroughResult extends WriteResult {
  /** false when PostgreSQL already held a newer version of the row (nothing changed). */
  applied: boolean;
}

/**
 * The write side of the SDK.
 * - writeBehind/deleteBehind: durable in the queue Redis and visible in the cache on return; the
 *   flusher writes to PostgreSQL later, coalescing rapid writes to the same row.
 * - writeThrough/deleteThrough: PostgreSQL first, then the cache; on an error the cache entry is
 *   dropped rather than left half-updated.
 * Every write takes a version from one clock, so whatever order the writes land in, the newest wins
 * in PostgreSQL and in the cache.
 */
export class WriteClient {
  readonly layout: WriteBehindLayout;
  private readonly queue: Queue<FlushJobData>;
  private readonly cache: CacheWriter;
  private readonly versionColumn: string;
  private readonly tombstoneTable: string;
  private readonly shapes = new Map<string, Promise<TableShape>>();
  private tombstonesReady: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly options: WriteClientOptions) {
    this.layout = writeBehindLayout(options.queuePrefix ?? DEFAULT_WRITE_BEHIND_PREFIX);
    this.queue = new Queue<FlushJobData>(options.queueName ?? DEFAULT_WRITE_BEHIND_QUEUE, {
      connection: options.queueRedis,
      prefix: this.layout.bullPrefix,
    });
    this.cache = new CacheWriter({
      redis: options.cacheRedis,
      keyPrefix: options.cacheKeyPrefix ?? '',
      ttlMs: options.cacheTtlMs ?? 3_600_000,
      ...(options.serializer ? { serializer: options.serializer } : {}),
    });
    this.versionColumn = options.versionColumn ?? DEFAULT_VERSION_COLUMN;
    this.tombstoneTable = options.tombstoneTable ?? 'walpurge_write_behind_tombstones';
  }

  writeBehind(table: string, row: WriteRow, options: WriteOptions = {}): Promise<WriteResult> {
    return this.behind('u', table, row, options);
  }

  /** `row` needs the primary-key columns (other columns help render cache keys). */
  deleteBehind(table: string, row: WriteRow, options: WriteOptions = {}): Promise<WriteResult> {
    return this.behind('d', table, row, options);
  }

  writeThrough(table: string, row: WriteRow, options: WriteOptions = {}): Promise<WriteThroughResult> {
    return this.through('u', table, row, options);
  }

  deleteThrough(table: string, row: WriteRow, options: WriteOptions = {}): Promise<WriteThroughResult> {
    return this.through('d', table, row, options);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.queue.close();
    for (const redis of this.options.owned?.redis ?? []) await redis.quit().catch(() => redis.disconnect());
    await this.options.owned?.pool?.end();
  }

  private async behind(
    op: 'u' | 'd',
    table: string,
    row: WriteRow,
    options: WriteOptions,
  ): Promise<WriteResult> {
    const { qualified, primaryKey, rowId, keys } = this.identify(table, row, options);
    const stored = op === 'u' ? JSON.stringify(row) : '';
    const reply = stringArrayReply(
      await acceptWrite.run(
        this.options.queueRedis,
        [this.layout.pending(rowId), this.layout.index, this.layout.clock, this.layout.stats],
        [rowId, qualified, stableJson(primaryKey), stored, op],
      ),
      'write-behind accept',
    );
    const [version, jobId] = reply as [string, string];
    if (jobId) {
      const data: FlushJobData = { rowId, table: qualified, key: stableJson(primaryKey) };
      await this.queue.add(
        FLUSH_JOB_NAME,
        data,
        flushJobOptions(jobId, this.options.flushAttempts ?? DEFAULT_FLUSH_ATTEMPTS),
      );
    }
    const cacheKeysWritten = await this.updateCache(op, keys, row, version, 'queued for PostgreSQL');
    return { table: qualified, rowId, version, cacheKeysWritten };
  }

  private async through(
    op: 'u' | 'd',
    table: string,
    row: WriteRow,
    options: WriteOptions,
  ): Promise<WriteThroughResult> {
    const database = this.options.database;
    if (!database) {
      throw new WalpurgeError(
        ErrorCode.WriteInvalid,
        `${op === 'u' ? 'writeThrough' : 'deleteThrough'} needs a database`,
        {
          hint: 'pass `database` (a pg Pool) to createWriteClient',
        },
      );
    }
    const { qualified, primaryKey, rowId, keys } = this.identify(table, row, options);
    const shape = await this.shape(database, qualified);
    const problem = checkRowAgainstShape(shape, primaryKey, op === 'u' ? row : undefined);
    if (problem) throw new WalpurgeError(ErrorCode.WriteInvalid, problem);
    // Both statements consult the tombstone table (an upsert must not resurrect a deleted row), and
    // write-through may run before any flusher has created it.
    await this.ensureTombstones(database);
    const version = String(await nextVersion.run(this.options.queueRedis, [this.layout.clock], []));

    const params = [
      JSON.stringify([{ ...(op === 'u' ? row : primaryKey), [this.versionColumn]: version }]),
      qualified,
    ];
    let applied: boolean;
    if (op === 'u') {
      const result = await database.query(
        upsertStatement(shape, Object.keys(row), this.tombstoneTable),
        params,
      );
      applied = (result.rowCount ?? 0) > 0;
    } else {
      const result = await database.query<{ deleted: number }>(
        deleteStatement(shape, this.tombstoneTable),
        params,
      );
      applied = (result.rows[0]?.deleted ?? 0) > 0;
    }
    // Committed. The cache must now show it, or show nothing (the next read loads it). A delete
    // always leaves its versioned tombstone in the cache, even when PostgreSQL had no row yet: a
    // write-behind value of the row may be cached while its flush is pending, and that flush will be
    // refused by the database tombstone, so no change event would ever purge it. (A newer cached
    // value is left alone by the version guard.)
    const cacheKeysWritten =
      applied || op === 'd' ? await this.updateCache(op, keys, row, version, 'committed to PostgreSQL') : 0;
    return { table: qualified, rowId, version, cacheKeysWritten, applied };
  }

  private async updateCache(
    op: 'u' | 'd',
    keys: readonly string[],
    row: WriteRow,
    version: string,
    state: string,
  ): Promise<number> {
    try {
      return op === 'u' ? await this.cache.set(keys, row, version) : await this.cache.delete(keys, version);
    } catch (error) {
      await this.cache.forget(keys).catch(() => undefined);
      throw new WalpurgeError(
        ErrorCode.WriteBehindCacheFailed,
        `the write is ${state} (version ${version}) but the cache could not be updated: ${errorMessage(error)}`,
        {
          retriable: true,
          cause: error,
          hint: 'the cache entries were dropped if Redis allowed it; reads reload them',
        },
      );
    }
  }

  private identify(table: string, row: WriteRow, options: WriteOptions) {
    const qualified = qualifyWriteTable(table);
    const columns = options.primaryKey ??
      this.options.primaryKeys?.[qualified] ??
      this.options.primaryKeys?.[table] ?? ['id'];
    const primaryKey: WriteRow = {};
    for (const column of columns) {
      const value = row[column];
      if (value === undefined || value === null) {
        throw new WalpurgeError(
          ErrorCode.WriteInvalid,
          `row for ${qualified} has no value for primary-key column ${column}`,
          {
            hint: 'include the primary key in the row, or pass primaryKey',
          },
        );
      }
      primaryKey[column] = value;
    }
    if (this.versionColumn in row) {
      throw new WalpurgeError(
        ErrorCode.WriteInvalid,
        `row for ${qualified} sets ${this.versionColumn}, which walpurge manages`,
      );
    }
    const keys = options.keys ?? this.options.keys?.(qualified, row) ?? [];
    return { qualified, primaryKey, rowId: rowIdOf(qualified, primaryKey), keys };
  }

  private shape(database: pg.Pool, table: string): Promise<TableShape> {
    let shape = this.shapes.get(table);
    if (!shape) {
      shape = (async () => {
        const client = await database.connect();
        try {
          return await describeWriteTable(client, table, this.versionColumn);
        } finally {
          client.release();
        }
      })();
      shape.catch(() => this.shapes.delete(table));
      this.shapes.set(table, shape);
    }
    return shape;
  }

  private ensureTombstones(database: pg.Pool): Promise<void> {
    this.tombstonesReady ??= (async () => {
      for (const statement of tombstoneTableDdl(this.tombstoneTable)) await database.query(statement);
    })();
    this.tombstonesReady.catch(() => (this.tombstonesReady = undefined));
    return this.tombstonesReady;
  }
}

export function createWriteClient(options: WriteClientOptions): WriteClient {
  return new WriteClient(options);
}

/**
 * A client configured like the flusher (walpurge.yaml): cache Redis from `redis`, queue Redis and
 * naming from `flusher`, database from `database`. It owns (and closes) the connections it opens.
 */
export function createWriteClientFromConfig(
  config: WalpurgeConfig,
  options: Omit<WriteClientOptions, 'cacheRedis' | 'queueRedis' | 'database' | 'owned'> & {
    withDatabase?: boolean;
    /**
     * Per table, which of its rules' `redis.keys` templates hold the row itself, e.g.
     * `{ users: ['user:{id}', 'user_by_email:{email}'] }`: writes render and update exactly these keys
     * (lists and other derived keys stay the invalidator's to purge). Used when `keys` is not given.
     */
    rowKeys?: Record<string, readonly string[]>;
  } = {},
): WriteClient {
  const flusher = config.flusher;
  if (!config.redis || !flusher) {
    throw new WalpurgeError(
      ErrorCode.ConfigInvalid,
      'write-behind needs the `redis` and `flusher` sections of walpurge.yaml',
    );
  }
  const { rowKeys, withDatabase, ...rest } = options;
  const keys = options.keys ?? (rowKeys ? keysFromRules(config, rowKeys) : undefined);
  const cacheRedis = config.redis.cluster
    ? connectCacheRedis(config.redis.url, true, 0, { offlineQueue: true })
    : new Redis(config.redis.url, { lazyConnect: false });
  const queueRedis = new Redis(flusher.queueRedisUrl, { maxRetriesPerRequest: null });
  const pool =
    withDatabase && config.database ? new pg.Pool({ connectionString: config.database.url }) : undefined;
  return new WriteClient({
    ...rest,
    ...(keys ? { keys } : {}),
    cacheRedis,
    queueRedis,
    ...(pool ? { database: pool } : {}),
    queuePrefix: flusher.keyPrefix,
    queueName: flusher.queueName,
    cacheKeyPrefix: config.redis.keyPrefix,
    versionColumn: flusher.versionColumn,
    tombstoneTable: flusher.tombstoneTable,
    flushAttempts: flusher.maxAttempts,
    owned: { redis: [cacheRedis, queueRedis], ...(pool ? { pool } : {}) },
  });
}

/** Key renderer for the tables in `rowKeys`, checked against the rules file at once. */
function keysFromRules(
  config: WalpurgeConfig,
  rowKeys: Record<string, readonly string[]>,
): (table: string, row: WriteRow) => readonly string[] {
  const targets = rowTargetsFromRules(config.rules);
  const byTable = new Map<string, readonly string[]>();
  for (const [table, templates] of Object.entries(rowKeys)) {
    targets.checkKeyTemplates(table, templates);
    byTable.set(qualifyWriteTable(table), templates);
  }
  return (table, row) => {
    const templates = byTable.get(qualifyWriteTable(table));
    return templates ? targets.redisKeys(table, row, templates) : [];
  };
}
