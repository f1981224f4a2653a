import { stateTableSql } from '../state-table-sql.js';
import pg from 'pg';
import { z } from 'zod';
import {
  backoffDelay,
  ErrorCode,
  errorMessage,
  sleep,
  sqlState,
  WalpurgeError,
  type BackoffOptions,
  type Logger,
} from '@walpurge/core';
import { decodeChangeEventV1, encodeChangeEvent, type ChangeEvent } from '@walpurge/protocol';
import type { CompiledRules } from '@walpurge/rules';
import type { Purger } from '../targets/purger.js';
import { CdnQueueError, type CdnEnqueuer, type CdnQueueEntry } from './cdn-queue.js';
import { pgConnectionOptions, type DatabaseSslConfig } from '@walpurge/config';

export { stateTableSql as queueTableSql } from '../state-table-sql.js';

/** Connection failures and SQLSTATE classes 08, 40, 53, 57, 58 pass; everything else is a setup problem. */
export function isTransientDatabaseError(error: unknown): boolean {
  const state = sqlState(error);
  if (state === undefined) return true;
  return ['08', '40', '53', '57', '58'].includes(state.slice(0, 2));
}

const QueueRow = z.object({
  id: z.string().regex(/^\d+$/),
  provider: z.string(),
  event: z.string(),
  enqueued_ms: z.coerce.number(),
});

/** walpurge_cdn_queue_depth counts at most this many rows per provider (the gauge then means "at least"). */
export const STATS_DEPTH_CAP = 100_000;
/** How long opening a connection may take before it counts as a (transient) failure. */
const CONNECT_TIMEOUT_MS = 10_000;

const QueueStats = z.object({ depth: z.coerce.number(), oldest_ms: z.coerce.number().nullable() });

/** A row the lane could not turn back into a change event (edited by hand, another version). */
export interface UndecodableRow {
  id: string;
  text: string;
  error: unknown;
}

/** A held lane lock (see tryLaneLock). */
export interface LaneLock {
  /** False once its connection is gone: the lock may then be someone else's. */
  held(): boolean;
  release(): Promise<void>;
}

export interface PostgresCdnQueueOptions {
  url: string;
  ssl?: DatabaseSslConfig | undefined;
  table: string;
  rules: CompiledRules;
  /** The CDN purgers: a row is written per event and provider that has something to purge. */
  providers: readonly Purger[];
  logger: Logger;
  backoff: BackoffOptions;
}

/**
 * The CDN queue of the inline transport: a table in the source database, one row per (event,
 * provider). `enqueue` commits one INSERT for the whole batch before invalidator.handle resolves,
 * so before the listener acknowledges the LSN: a crash at any point leaves either the slot behind
 * (the batch is replayed) or the rows in place (the lane purges them after the restart). The table
 * is not in the publication (never add it): its own changes would be streamed back.
 */
export class PostgresCdnQueue implements CdnEnqueuer {
  /** The lanes' reads, deletes and gauges. */
  private readonly pool: pg.Pool;
  /**
   * The pipeline's enqueue alone: the slot's acknowledgement waits on it, so nothing the lanes do
   * (a slow stats query on a large backlog, a long delete) may queue it behind them.
   */
  private readonly enqueuePool: pg.Pool;
  private readonly sql: string;

  constructor(private readonly options: PostgresCdnQueueOptions) {
    this.sql = stateTableSql(options.table);
    const settings = {
      ...pgConnectionOptions(options),
      idleTimeoutMillis: 30_000,
      // Without it a connect to an unreachable database waits for the OS (minutes), stops included.
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      keepAlive: true,
      query_timeout: 10_000,
    };
    // One per lane reading plus one for the gauges.
    this.pool = new pg.Pool({
      ...settings,
      max: options.providers.length + 1,
      application_name: 'walpurge-cdn-lane',
    });
    this.enqueuePool = new pg.Pool({ ...settings, max: 1, application_name: 'walpurge-cdn-queue' });
    this.pool.on('error', () => {}); // idle client errors: the next query reconnects
    this.enqueuePool.on('error', () => {});
  }

  /** Creates the table when missing; checked first, as CREATE … IF NOT EXISTS needs CREATE on the schema. */
  async ensureTable(): Promise<boolean> {
    const { rows } = await this.pool.query<{ found: boolean }>(
      'SELECT to_regclass($1) IS NOT NULL AS found',
      [this.sql],
    );
    if (rows[0]?.found) return false;
    try {
      await this.pool.query(`CREATE TABLE IF NOT EXISTS ${this.sql} (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        provider text NOT NULL,
        event text NOT NULL,
        enqueued_at timestamptz NOT NULL DEFAULT now()
      )`);
      await this.pool.query(
        `CREATE INDEX IF NOT EXISTS ${JSON.stringify(`${this.options.table.replace(/^.*\./, '')}_provider_id`)} ON ${this.sql} (provider, id)`,
      );
      await this.pool.query(
        `COMMENT ON TABLE ${this.sql} IS 'walpurge: CDN purges still to do (inline transport), one row per change event and CDN provider; keep it out of the publication'`,
      );
    } catch (error) {
      if (sqlState(error) !== '42501') throw error;
      throw new WalpurgeError(
        ErrorCode.Privileges,
        `cannot create the CDN queue table ${this.options.table}: ${errorMessage(error)}`,
        {
          hint: 'grant CREATE on its schema for the first start, or create it as its owner (the DDL is in docs/configuration.md) and GRANT SELECT, INSERT, DELETE on it',
          cause: error,
        },
      );
    }
    return true;
  }

  async enqueue(events: readonly ChangeEvent[], signal: AbortSignal): Promise<void> {
    const providers: string[] = [];
    const texts: string[] = [];
    for (const event of events) {
      const plan = this.options.rules.planPurges(event);
      const text = encodeChangeEvent(event).toString('utf8');
      for (const provider of this.options.providers) {
        if (provider.count(plan) === 0) continue;
        providers.push(provider.name);
        texts.push(text);
      }
    }
    if (texts.length === 0) return;
    await this.withRetry('enqueue CDN purges', signal, () =>
      this.enqueuePool.query(
        `INSERT INTO ${this.sql} (provider, event) SELECT * FROM unnest($1::text[], $2::text[])`,
        [providers, texts],
      ),
    );
  }

  /** The oldest `limit` entries of the provider; undecodable rows are handed back separately. */
  async oldest(
    provider: string,
    limit: number,
    signal: AbortSignal,
  ): Promise<{ entries: CdnQueueEntry[]; undecodable: UndecodableRow[] }> {
    const result = await this.withRetry('read the CDN queue', signal, () =>
      this.pool.query(
        `SELECT id::text AS id, provider, event,
                (extract(epoch FROM enqueued_at) * 1000)::float8 AS enqueued_ms
           FROM ${this.sql} WHERE provider = $1 ORDER BY id LIMIT $2`,
        [provider, limit],
      ),
    );
    const entries: CdnQueueEntry[] = [];
    const undecodable: UndecodableRow[] = [];
    for (const raw of result.rows) {
      const row = QueueRow.parse(raw);
      try {
        entries.push({ id: row.id, event: decodeChangeEventV1(row.event), enqueuedAt: row.enqueued_ms });
      } catch (error) {
        undecodable.push({ id: row.id, text: row.event, error });
      }
    }
    return { entries, undecodable };
  }

  async remove(ids: readonly string[], signal: AbortSignal): Promise<void> {
    if (ids.length === 0) return;
    await this.withRetry('delete purged CDN queue rows', signal, () =>
      this.pool.query(`DELETE FROM ${this.sql} WHERE id = ANY($1::bigint[])`, [ids]),
    );
  }

  /**
   * Rows of the provider, counted up to STATS_DEPTH_CAP (a depth equal to the cap means "at least"),
   * and when the oldest was queued (ms since the epoch; null when none). Both walk the (provider, id)
   * index and stop early, so a paused provider's backlog of millions costs what 100 000 rows cost.
   * Ids grow with time, so the lowest id is the oldest row.
   */
  async stats(provider: string): Promise<{ depth: number; oldestMs: number | null }> {
    const { rows } = await this.laneQuery(
      `SELECT (SELECT count(*) FROM (SELECT 1 FROM ${this.sql} WHERE provider = $1 LIMIT $2) AS capped) AS depth,
              (SELECT (extract(epoch FROM enqueued_at) * 1000)::float8 FROM ${this.sql}
                WHERE provider = $1 ORDER BY id LIMIT 1) AS oldest_ms`,
      [provider, STATS_DEPTH_CAP],
    );
    const stats = QueueStats.parse(rows[0]);
    return { depth: stats.depth, oldestMs: stats.oldest_ms };
  }

  /** A query on the lanes' pool (never the enqueue's). */
  protected laneQuery(text: string, values: unknown[]): Promise<pg.QueryResult> {
    return this.pool.query(text, values);
  }

  /**
   * The right to run the provider's lane: a session advisory lock on a connection of its own, so the
   * standby of an active/standby pair (both run an invalidator) does not purge the same rows twice
   * and spend the provider's API limit twice. Undefined when another process holds it. The lock goes
   * with its connection: a crashed or partitioned holder's lock is released by PostgreSQL once it
   * notices the connection is dead, which with default TCP settings takes about 2 hours.
   */
  async tryLaneLock(provider: string): Promise<LaneLock | undefined> {
    const client = new pg.Client({
      ...pgConnectionOptions(this.options),
      application_name: 'walpurge-cdn-lane-lock',
      // This side notices a dead server after ~10 s idle plus the OS probes; the other side (the
      // server dropping a dead holder's lock) is bounded by its tcp_keepalives_* / tcp_user_timeout
      // settings (docs/deployment.md), not by this.
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      query_timeout: 10_000,
    });
    let alive = true;
    client.on('error', () => (alive = false));
    client.on('end', () => (alive = false));
    await client.connect();
    try {
      const { rows } = await client.query<{ locked: boolean }>(
        'SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS locked',
        [`walpurge-cdn-lane:${this.sql}:${provider}`],
      );
      if (rows[0]?.locked !== true) {
        await client.end().catch(() => {});
        return undefined;
      }
    } catch (error) {
      await client.end().catch(() => {});
      throw error;
    }
    return {
      held: () => alive,
      release: async () => {
        alive = false;
        await client.end().catch(() => {});
      },
    };
  }

  async close(): Promise<void> {
    await Promise.all([this.pool.end().catch(() => {}), this.enqueuePool.end().catch(() => {})]);
  }

  /**
   * Transient database failures (connection, serialization, resources) are retried with backoff
   * until the signal aborts; anything else is a setup problem of the queue, not of the events.
   */
  private async withRetry<T>(what: string, signal: AbortSignal, query: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt += 1) {
      signal.throwIfAborted();
      try {
        return await query();
      } catch (error) {
        if (signal.aborted) throw error;
        if (!isTransientDatabaseError(error))
          throw new CdnQueueError(`cannot ${what} (table ${this.options.table}): ${errorMessage(error)}`, {
            cause: error,
            hint: 'check that the table exists as created by walpurge and that its role may SELECT, INSERT and DELETE on it',
          });
        const delayMs = backoffDelay(attempt, this.options.backoff);
        this.options.logger.warn(
          { err: error, delayMs, table: this.options.table },
          `cannot ${what}, retrying`,
        );
        await sleep(delayMs, signal);
      }
    }
  }
}
