import { Redis } from 'ioredis';
import pg from 'pg';
import { createCacheClient, type GetOptions } from '@walpurge/client';
import { createWriteClientFromConfig } from '@walpurge/client/write';
import type { WalpurgeConfig } from '@walpurge/config';
import { endPool, withPgClient } from '@walpurge/testing';
import {
  keyOf,
  PLAIN_KEY,
  SDK_KEY,
  VERSION_COLUMN,
  WRITE_BEHIND_KEY,
  WRITE_BEHIND_VERSION_COLUMN,
} from './soak-config.js';
import { zipfSampler } from './zipf.js';

export interface WorkloadOptions {
  databaseUrl: string;
  cacheRedisUrl: string;
  prefix: string;
  /** The roles' configuration: the write side reads its flusher section, as an application would. */
  config: WalpurgeConfig;
  rows: number;
  readers: number;
  writers: number;
  /** Pause of each writer between two writes, ms: what keeps the roles from starving on few cores. */
  writePauseMs: number;
}

export interface WorkloadCounts {
  sqlCommits: number;
  writeBehindAccepted: number;
  sdkReads: number;
  plainReads: number;
  plainFills: number;
  /** Operations that failed (a fault was on): by kind, then by error message's first words. */
  errors: Record<string, number>;
}

export interface Workload {
  readonly counts: WorkloadCounts;
  /** Stops the loops, waits for the operations in flight, closes every connection. */
  stop(): Promise<void>;
}

interface ItemRow {
  id: number;
  version: string;
  payload: string;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
/** Hot rows' reads stay cached long enough that a missed purge stays visible to the observer. */
const TTL_SECONDS = 600;

/**
 * The application: SDK readers with leases and the row's version (`version`), a plain cache-aside
 * reader (GET; on a miss SELECT, then SET a JSON value with the version column: the classic race,
 * nothing guards its SET), writers through SQL (bumping the version counter) and through
 * writeBehind. Every key is drawn from one Zipf distribution, so readers and writers collide.
 */
export async function startWorkload(options: WorkloadOptions): Promise<Workload> {
  const pool = new pg.Pool({ connectionString: options.databaseUrl, max: options.readers + options.writers });
  // Faults close connections: an idle client's error must not end the process.
  pool.on('error', () => undefined);
  const redis = new Redis(options.cacheRedisUrl, { maxRetriesPerRequest: 2 });
  redis.on('error', () => undefined);
  const cache = createCacheClient({ redis, keyPrefix: options.prefix, coalesce: false });
  const writes = createWriteClientFromConfig(options.config, {
    keys: (_table, row) => [keyOf(WRITE_BEHIND_KEY, Number(row['id']))],
  });
  const pick = zipfSampler(options.rows, 1.1);
  const counts: WorkloadCounts = {
    sqlCommits: 0,
    writeBehindAccepted: 0,
    sdkReads: 0,
    plainReads: 0,
    plainFills: 0,
    errors: {},
  };
  const failed = (kind: string, error: unknown): void => {
    const message = error instanceof Error ? error.message : String(error);
    const label = `${kind}: ${message
      .split(/[\s:]+/)
      .slice(0, 4)
      .join(' ')}`;
    counts.errors[label] = (counts.errors[label] ?? 0) + 1;
  };

  const loadRow = async (table: 'items' | 'wb_items', id: number): Promise<ItemRow> => {
    const version = table === 'items' ? VERSION_COLUMN : WRITE_BEHIND_VERSION_COLUMN;
    const { rows } = await pool.query<ItemRow>(
      `SELECT id, ${version} AS version, payload FROM ${table} WHERE id = $1`,
      [id],
    );
    if (!rows[0]) throw new Error(`row ${table} ${id} is missing`);
    return rows[0];
  };
  // The entry records the version of the row it was loaded from: what the observer compares.
  const readOptions: GetOptions<ItemRow> = {
    ttl: TTL_SECONDS,
    version: (row) => row.version,
  };

  const readOnce = async (): Promise<void> => {
    const id = pick();
    const dice = Math.random();
    if (dice < 0.45) {
      await cache.get(keyOf(SDK_KEY, id), () => loadRow('items', id), readOptions);
      counts.sdkReads += 1;
    } else if (dice < 0.65) {
      await cache.get(keyOf(WRITE_BEHIND_KEY, id), () => loadRow('wb_items', id), readOptions);
      counts.sdkReads += 1;
    } else {
      const key = `${options.prefix}${keyOf(PLAIN_KEY, id)}`;
      counts.plainReads += 1;
      if ((await redis.get(key)) !== null) return;
      const row = await loadRow('items', id);
      await redis.set(key, JSON.stringify(row), 'EX', TTL_SECONDS);
      counts.plainFills += 1;
    }
  };
  const writeOnce = async (): Promise<void> => {
    const id = pick();
    if (Math.random() < 0.75) {
      await pool.query(
        `UPDATE items SET ${VERSION_COLUMN} = ${VERSION_COLUMN} + 1, payload = $2 WHERE id = $1`,
        [id, `sql ${Date.now()}`],
      );
      counts.sqlCommits += 1;
    } else {
      await writes.writeBehind('public.wb_items', { id, payload: `wb ${Date.now()}` });
      counts.writeBehindAccepted += 1;
    }
  };

  let stopped = false;
  const loop = async (kind: string, once: () => Promise<void>, pauseMs: number): Promise<void> => {
    while (!stopped) {
      try {
        await once();
      } catch (error) {
        failed(kind, error);
        await sleep(100); // a fault is on: do not spin on it
      }
      await sleep(pauseMs);
    }
  };
  const loops = [
    ...Array.from({ length: options.readers }, () => loop('read', readOnce, 1)),
    ...Array.from({ length: options.writers }, () => loop('write', writeOnce, options.writePauseMs)),
  ];

  return {
    counts,
    async stop() {
      stopped = true;
      await Promise.all(loops);
      await Promise.allSettled([cache.close(), writes.close()]);
      redis.disconnect();
      await endPool(pool);
    },
  };
}

/** The rows every reader and writer picks from, at version 0. */
export async function seedRows(databaseUrl: string, rows: number): Promise<void> {
  await withPgClient(databaseUrl, async (client) => {
    for (const table of ['items', 'wb_items'])
      await client.query(
        `INSERT INTO ${table} (id, payload) SELECT g, 'seed' FROM generate_series(1, $1::int) g`,
        [rows],
      );
  });
}
