import pg from 'pg';
import {
  ErrorCode,
  WalpurgeError,
  backoffDelay,
  errorMessage,
  isWalpurgeError,
  sleep,
  type BackoffOptions,
  type Logger,
} from '@walpurge/core';
import { encodeChangeEvent, qualifiedTable } from '@walpurge/protocol';
import type { InvalidatorMetrics } from '../metrics.js';
import type { DeadLetter, DeadLetterSink } from './dead-letter-sink.js';
import { deadLetterTableSql, ensureDeadLetterTable } from './dead-letter-table.js';
import { isTransientPgError } from './transient-pg-error.js';
import { pgConnectionOptions, type DatabaseSslConfig } from '@walpurge/config';

/** Kept of an error message in the row (the full one is logged). */
const ERROR_CHARS = 2_000;

type Queryable = pg.ClientBase | pg.Pool;

/** Stores one dead letter (autocommit, or in the caller's transaction); resolves with its id. */
export async function insertDeadLetter(
  client: Queryable,
  table: string,
  letter: DeadLetter,
): Promise<string> {
  const { event } = letter;
  const { rows } = await client.query<{ id: string }>(
    `INSERT INTO ${deadLetterTableSql(table)}
       (cause, target, error_code, error_message, table_name, lsn, commit_ts, rules, event)
     VALUES ($1, $2, $3, $4, $5, $6::pg_lsn, $7::timestamptz, $8::text[], $9::jsonb)
     RETURNING id::text AS id`,
    [
      letter.cause,
      letter.target,
      isWalpurgeError(letter.error) ? letter.error.code : 'unknown',
      errorMessage(letter.error).slice(0, ERROR_CHARS),
      qualifiedTable(event),
      event.source.lsn,
      event.source.commitTs,
      [...letter.rules],
      encodeChangeEvent(event).toString('utf8'),
    ],
  );
  return rows[0]?.id ?? '';
}

export interface PostgresDeadLetterSinkOptions {
  url: string;
  ssl?: DatabaseSslConfig | undefined;
  /** `database.deadLetterTable`. */
  table: string;
  metrics: InvalidatorMetrics;
  logger: Logger;
  backoff: BackoffOptions;
}

/**
 * The inline transport's dead-letter store: a row per refused event in `database.deadLetterTable`.
 * `send` resolves only once the row is committed, so the LSN is acknowledged after the event is
 * safe. A database that is briefly away (connection, failover, deadlock, resources) is waited for
 * with backoff; any other failure (table dropped, privilege revoked) rejects loudly: the handle
 * then rejects too and the LSN stays unacknowledged, so the event is met again after the fix
 * instead of being lost.
 */
export class PostgresDeadLetterSink implements DeadLetterSink {
  private readonly pool: pg.Pool;

  constructor(private readonly options: PostgresDeadLetterSinkOptions) {
    this.pool = new pg.Pool({
      ...pgConnectionOptions(options),
      application_name: 'walpurge-dead-letters',
      // Refusals are rare: one connection, kept only while in use.
      max: 2,
      idleTimeoutMillis: 10_000,
      connectionTimeoutMillis: 10_000,
      query_timeout: 30_000,
      keepAlive: true,
    });
    // An idle connection dropped by the server must not crash the process; the next send reconnects.
    this.pool.on('error', (error) =>
      options.logger.warn({ err: error }, 'dead-letter table connection lost (reconnects on next use)'),
    );
  }

  /** Creates the table when missing (at start, so a missing privilege shows before the first refusal). */
  async start(): Promise<void> {
    try {
      if (await ensureDeadLetterTable(this.pool, this.options.table))
        this.options.logger.info({ table: this.options.table }, 'created the dead-letter table');
    } catch (error) {
      if (isWalpurgeError(error)) throw error;
      throw new WalpurgeError(
        isTransientPgError(error) ? ErrorCode.DatabaseUnreachable : ErrorCode.DatabaseSetup,
        `cannot prepare the dead-letter table ${this.options.table}: ${errorMessage(error)}`,
        { retriable: isTransientPgError(error), cause: error },
      );
    }
  }

  async send(letter: DeadLetter, signal: AbortSignal): Promise<void> {
    const { logger, metrics, table } = this.options;
    for (let attempt = 0; ; attempt += 1) {
      signal.throwIfAborted();
      try {
        await insertDeadLetter(this.pool, table, letter);
        break;
      } catch (error) {
        if (signal.aborted) throw error;
        if (!isTransientPgError(error)) {
          logger.error(
            { err: error, table, event: encodeChangeEvent(letter.event).toString('utf8') },
            'cannot store the refused event in the dead-letter table; its LSN is not acknowledged',
          );
          throw new WalpurgeError(
            ErrorCode.DatabaseSetup,
            `cannot store a dead letter in ${table}: ${errorMessage(error)}`,
            {
              retriable: false,
              hint: 'check the table exists with the documented columns and the role may INSERT into it; walpurge resumes from the unacknowledged event after a restart',
              cause: error,
            },
          );
        }
        const delayMs = backoffDelay(attempt, this.options.backoff);
        logger.warn({ err: error, delayMs, table }, 'storing a dead letter failed, retrying');
        await sleep(delayMs, signal);
      }
    }
    metrics.deadLetters.inc({ reason: letter.cause });
    logger.warn(
      {
        cause: letter.cause,
        target: letter.target,
        rules: letter.rules,
        table: qualifiedTable(letter.event),
        lsn: letter.event.source.lsn,
        deadLetterTable: table,
        error: errorMessage(letter.error),
      },
      'refused event stored in the dead-letter table',
    );
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
