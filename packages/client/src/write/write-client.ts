import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { connectCacheRedis, type CacheRedis } from '../read/cache-redis.js';
import pg from 'pg';
import { ErrorCode, WalpurgeError, errorMessage } from '@walpurge/core';
import {
  pgConnectionOptions,
  queueRedisConnection,
  redisTlsOptions,
  type WalpurgeConfig,
} from '@walpurge/config';
import type { Serializer } from '../read/serializer.js';
import { CacheWriter, type EntryLifetime } from './cache-writer.js';
import { jitteredTtlMs } from '../read/xfetch.js';
import {
  ACCEPT_WRITE_SCRIPT,
  DEFAULT_FLUSH_ATTEMPTS,
  DEFAULT_VERSION_COLUMN,
  DEFAULT_WRITE_BEHIND_PREFIX,
  DEFAULT_WRITE_BEHIND_QUEUE,
  FLUSH_JOB_NAME,
  LuaScript,
  NEXT_VERSION_SCRIPT,
  assertQueueRedisSafe,
  deleteStatement,
  describeWriteTable,
  flushJobOptions,
  lockRows,
  qualifyWriteTable,
  rowIdOf,
  stableJson,
  stringArrayReply,
  tombstoneTableDdl,
  upsertStatement,
  writeBehindLayout,
  type FlushJobData,
  type TableShape,
  type WriteBehindLayout,
} from '@walpurge/write-behind';
import { checkWriteRow } from './row-check.js';
import { awaitDurable, type AcceptDurability } from './durability.js';
import { rowTargetsFromRules } from '../rules/row-targets.js';

const acceptWrite = new LuaScript(ACCEPT_WRITE_SCRIPT);
const nextVersion = new LuaScript(NEXT_VERSION_SCRIPT);

export type WriteRow = Record<string, unknown>;

export interface WriteClientOptions {
  /** The cache Redis (the one the invalidator purges). */
  /** The cache Redis, or a Redis Cluster (`redis.cluster`). */
  cacheRedis: CacheRedis;
  /** The queue Redis: must keep data (noeviction + AOF). May be the same server in tests. */
  queueRedis: Redis;
  /**
   * Needed by every write: rows are checked against the table's shape (columns, types, primary key)
   * before they are accepted, and write-through/delete-through write through it.
   */
  database?: pg.Pool;
  /** How long a table's shape read from PostgreSQL is trusted before it is read again, ms (default 60 s). */
  shapeRefreshMs?: number;
  /** flusher.acceptDurability: what a writeBehind must wait for before it returns (default primary). */
  durability?: AcceptDurability;
  /**
   * flusher.allowUnsafeRedis: accept writes on a queue Redis that may evict keys or has no AOF.
   * Otherwise the first write checks the queue Redis and refuses (WP_REDIS_UNSAFE_FOR_QUEUE).
   */
  allowUnsafeQueueRedis?: boolean;
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
  /**
   * Soft TTL of the cache entries written, ms (default 1 hour), when a call passes no `ttl`. Set it
   * to the `ttl` your reads use, or pass `ttl` per call.
   */
  cacheTtlMs?: number;
  /** Stale-while-revalidate of the entries written, ms (default 0), when a call passes none. */
  cacheStaleWhileRevalidateMs?: number;
  /** Fraction by which the soft TTL is shortened at random, as the read side's ttlJitter (default 0.1). */
  ttlJitter?: number;
  serializer?: Serializer;
  /** flusher.maxAttempts. */
  flushAttempts?: number;
  /** Connections this client created and must close. */
  owned?: { redis?: CacheRedis[]; pool?: pg.Pool };
}

export interface WriteOptions {
  /** Cache keys holding this row (without redis.keyPrefix). */
  keys?: readonly string[];
  /**
   * Seconds the cached value is fresh, as the `ttl` the read side passes to get() for these keys
   * (same jitter). Default: the client's cacheTtlMs.
   */
  ttl?: number;
  /** Seconds after `ttl` the entry is still served stale, as in get(). Default: the client's. */
  staleWhileRevalidate?: number;
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
  private readonly shapes = new Map<string, { shape: Promise<TableShape>; readAtMs: number }>();
  private tombstonesReady: Promise<void> | undefined;
  private queueRedisChecked: Promise<void> | undefined;
  /** Highest version this client has seen: a floor for the next one (see NEXT_VERSION). */
  private highestVersion = 0;
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
    const {
      qualified,
      primaryKey,
      rowId,
      keys,
      row: checked,
    } = await this.identify(op, table, row, options, true);
    const stored = op === 'u' ? JSON.stringify(checked) : '';
    const lifetime = this.lifetime(options);
    await this.checkQueueRedis();
    const reply = stringArrayReply(
      await acceptWrite.run(
        this.options.queueRedis,
        [this.layout.pending(rowId), this.layout.index, this.layout.clock, this.layout.stats],
        [
          rowId,
          qualified,
          stableJson(primaryKey),
          stored,
          op,
          JSON.stringify(this.cache.fullKeys(keys)),
          String(this.highestVersion),
        ],
      ),
      'write-behind accept',
    );
    const [version, jobId] = reply as [string, string];
    this.sawVersion(version);
    if (jobId) {
      const data: FlushJobData = { rowId, table: qualified, key: stableJson(primaryKey) };
      await this.queue.add(
        FLUSH_JOB_NAME,
        data,
        flushJobOptions(jobId, this.options.flushAttempts ?? DEFAULT_FLUSH_ATTEMPTS),
      );
    }
    const cacheKeysWritten = await this.updateCache(
      op,
      keys,
      checked,
      version,
      'queued for PostgreSQL',
      lifetime,
    );
    // After the cache: if durability falls short the write still stands on the primary (and will be
    // flushed unless it fails now), so the cache must show it like any other accepted write.
    await awaitDurable(this.options.queueRedis, this.options.durability ?? { mode: 'primary' }, version);
    return { table: qualified, rowId, version, cacheKeysWritten };
  }

  private async through(
    op: 'u' | 'd',
    table: string,
    row: WriteRow,
    options: WriteOptions,
  ): Promise<WriteThroughResult> {
    const database = this.database(op === 'u' ? 'writeThrough' : 'deleteThrough');
    const identified = await this.identify(op, table, row, options, false);
    const { qualified, primaryKey, rowId, keys, shape } = identified;
    row = identified.row;
    const lifetime = this.lifetime(options);
    // Both statements consult the tombstone table (an upsert must not resurrect a deleted row), and
    // write-through may run before any flusher has created it.
    await this.ensureTombstones(database);
    const version = String(
      await nextVersion.run(this.options.queueRedis, [this.layout.clock], [String(this.highestVersion)]),
    );
    this.sawVersion(version);

    const params = [
      JSON.stringify([{ ...(op === 'u' ? row : primaryKey), [this.versionColumn]: version }]),
      qualified,
    ] as const;
    const applied = await this.inTransaction(database, async (client) => {
      // Serialised with the flusher's writes to this row (see lockRowsStatement).
      await lockRows(client, shape, params);
      if (op === 'u') {
        const result = await client.query(upsertStatement(shape, Object.keys(row), this.tombstoneTable), [
          ...params,
        ]);
        return (result.rowCount ?? 0) > 0;
      }
      const result = await client.query<{ deleted: number }>(deleteStatement(shape, this.tombstoneTable), [
        ...params,
      ]);
      return (result.rows[0]?.deleted ?? 0) > 0;
    });
    // Committed. The cache must now show it, or show nothing (the next read loads it). A delete
    // always leaves its versioned tombstone in the cache, even when PostgreSQL had no row yet: a
    // write-behind value of the row may be cached while its flush is pending, and that flush will be
    // refused by the database tombstone, so no change event would ever purge it. (A newer cached
    // value is left alone by the version guard.)
    // A partial update is merged by PostgreSQL; the cache gets a versioned marker without a value
    // (a miss for readers, who load the whole row), never the partial object.
    const partial = op === 'u' && !isCompleteRow(shape, row);
    const cacheKeysWritten =
      applied || op === 'd'
        ? await this.updateCache(partial ? 'd' : op, keys, row, version, 'committed to PostgreSQL', lifetime)
        : 0;
    return { table: qualified, rowId, version, cacheKeysWritten, applied };
  }

  private async updateCache(
    op: 'u' | 'd',
    keys: readonly string[],
    row: WriteRow,
    version: string,
    state: string,
    lifetime: EntryLifetime,
  ): Promise<number> {
    try {
      return op === 'u'
        ? await this.cache.set(keys, row, version, lifetime)
        : await this.cache.delete(keys, version, lifetime);
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

  /** The read side's rule (see CacheClient.get): jittered soft TTL, then stale-while-revalidate. */
  private lifetime(options: WriteOptions): EntryLifetime {
    const ttlMs = options.ttl !== undefined ? options.ttl * 1000 : (this.options.cacheTtlMs ?? 3_600_000);
    const staleMs =
      options.staleWhileRevalidate !== undefined
        ? options.staleWhileRevalidate * 1000
        : (this.options.cacheStaleWhileRevalidateMs ?? 0);
    if (!(ttlMs > 0) || !Number.isFinite(ttlMs) || !(staleMs >= 0) || !Number.isFinite(staleMs)) {
      throw new WalpurgeError(
        ErrorCode.WriteInvalid,
        'ttl must be a positive number of seconds and staleWhileRevalidate ≥ 0',
      );
    }
    const softTtlMs = jitteredTtlMs(ttlMs, this.options.ttlJitter ?? 0.1, Math.random);
    return { softTtlMs, physicalTtlMs: softTtlMs + Math.round(staleMs) };
  }

  private sawVersion(version: string): void {
    this.highestVersion = Math.max(this.highestVersion, Number(version));
  }

  /** Once per client; a queue Redis that may lose accepted writes is refused unless allowed. */
  private checkQueueRedis(): Promise<void> {
    if (this.options.allowUnsafeQueueRedis) return Promise.resolve();
    this.queueRedisChecked ??= assertQueueRedisSafe(this.options.queueRedis);
    // A connection error is worth another look next time; an unsafe Redis stays refused.
    this.queueRedisChecked.catch((error: unknown) => {
      if (!(error instanceof WalpurgeError)) this.queueRedisChecked = undefined;
    });
    return this.queueRedisChecked;
  }

  private async inTransaction<T>(database: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await database.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      // A session whose ROLLBACK fails is discarded, not returned to the pool.
      await client.query('ROLLBACK').catch((rollbackError: unknown) => {
        broken = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
      });
      throw error;
    } finally {
      client.release(broken);
    }
  }

  private database(what: string): pg.Pool {
    const database = this.options.database;
    if (!database) {
      throw new WalpurgeError(ErrorCode.WriteInvalid, `${what} needs a database`, {
        hint: 'pass `database` (a pg Pool) to createWriteClient: rows are checked against the table before they are accepted',
      });
    }
    return database;
  }

  /**
   * The row's identity and its checked, normalised form. Refuses (WriteInvalid) what the table
   * cannot hold; a refusal is re-checked once against a freshly read shape (the table may have
   * changed) before it is final.
   */
  private async identify(
    op: 'u' | 'd',
    table: string,
    row: WriteRow,
    options: WriteOptions,
    complete: boolean,
  ) {
    const qualified = qualifyWriteTable(table);
    const columns = options.primaryKey ??
      this.options.primaryKeys?.[qualified] ??
      this.options.primaryKeys?.[table] ?? ['id'];
    const given: WriteRow = {};
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
      given[column] = value;
    }
    if (this.versionColumn in row) {
      throw new WalpurgeError(
        ErrorCode.WriteInvalid,
        `row for ${qualified} sets ${this.versionColumn}, which walpurge manages`,
      );
    }
    const database = this.database(op === 'u' ? 'writeBehind' : 'deleteBehind');
    let shape = await this.shape(database, qualified, false);
    let checked = checkWriteRow(shape, given, op === 'u' ? row : undefined, complete);
    if (!checked.ok) {
      shape = await this.shape(database, qualified, true);
      checked = checkWriteRow(shape, given, op === 'u' ? row : undefined, complete);
    }
    if (!checked.ok) throw new WalpurgeError(ErrorCode.WriteInvalid, checked.reason);
    const primaryKey = checked.primaryKey;
    // Deletes keep the caller's other columns: they may be needed to render cache keys.
    const normalised = checked.row ?? { ...row, ...primaryKey };
    const keys = options.keys ?? this.options.keys?.(qualified, normalised) ?? [];
    return { qualified, primaryKey, rowId: rowIdOf(qualified, primaryKey), keys, shape, row: normalised };
  }

  /**
   * The table's shape, read again when older than shapeRefreshMs or when `reread` (a row did not
   * fit). If reading fails, the shape already known is kept: PostgreSQL being down must not stop
   * write-behind accepting rows it has already checked shapes for.
   */
  private async shape(database: pg.Pool, table: string, reread: boolean): Promise<TableShape> {
    const known = this.shapes.get(table);
    const refreshMs = this.options.shapeRefreshMs ?? 60_000;
    if (known && !reread && Date.now() - known.readAtMs < refreshMs) return known.shape;
    const read = (async () => {
      const client = await database.connect();
      try {
        return await describeWriteTable(client, table, this.versionColumn);
      } finally {
        client.release();
      }
    })();
    const entry = { shape: read, readAtMs: Date.now() };
    this.shapes.set(table, entry);
    try {
      return await read;
    } catch (error) {
      const fallback = known ? await known.shape.catch(() => undefined) : undefined;
      if (this.shapes.get(table) === entry) {
        if (fallback) this.shapes.set(table, known!);
        else this.shapes.delete(table);
      }
      if (fallback && !(error instanceof WalpurgeError)) return fallback;
      throw error;
    }
  }

  private ensureTombstones(database: pg.Pool): Promise<void> {
    this.tombstonesReady ??= (async () => {
      for (const statement of tombstoneTableDdl(this.tombstoneTable)) await database.query(statement);
    })();
    this.tombstonesReady.catch(() => (this.tombstonesReady = undefined));
    return this.tombstonesReady;
  }
}

function isCompleteRow(shape: TableShape, row: WriteRow): boolean {
  for (const [column, info] of shape.columnInfo ?? []) {
    if (!info.generated && column !== shape.versionColumn && !(column in row)) return false;
  }
  return true;
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
    /**
     * Open a pool to `database.url` (default true when the section exists): every write checks its
     * row against the table first, and write-through writes through it.
     */
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
    ? connectCacheRedis(config.redis, true, 0, { offlineQueue: true })
    : new Redis(config.redis.url, { ...redisTlsOptions(config.redis), lazyConnect: false });
  const queueRedis = new Redis(flusher.queueRedisUrl, {
    ...redisTlsOptions(queueRedisConnection(flusher)),
    maxRetriesPerRequest: null,
  });
  const pool =
    withDatabase !== false && config.database ? new pg.Pool(pgConnectionOptions(config.database)) : undefined;
  // Connections this client owns: an idle one dropped by the server (a PostgreSQL restart, a Redis
  // failover) emits 'error' with nothing in flight, which without a listener ends the application.
  // The next write on it fails and reports the error to its caller instead.
  for (const redis of [cacheRedis, queueRedis]) redis.on('error', () => {});
  pool?.on('error', () => {});
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
    durability: flusher.acceptDurability,
    allowUnsafeQueueRedis: flusher.allowUnsafeRedis,
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
