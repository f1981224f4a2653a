import pg from 'pg';
import { ErrorCode, WalpurgeError, isWalpurgeError, type Logger } from '@walpurge/core';
import { canStampCommitTime, setupReplicationOrigin } from './origin.js';
import { SessionUnavailableError } from './sql-errors.js';
import { pgConnectionOptions, type DatabaseSslConfig } from '@walpurge/config';

export interface FlushConnectionOptions {
  url: string;
  ssl?: DatabaseSslConfig | undefined;
  /** Replication origin to mark transactions with; undefined = unmarked. */
  origin: string | undefined;
  logger: Logger;
}

/**
 * The one PostgreSQL session batches are written through. One, because a replication origin can be
 * active in one session at a time, and because batches are written one after another anyway. After
 * any error the session is thrown away and a fresh one is opened on next use.
 */
export class FlushConnection {
  private client: pg.Client | undefined;
  private connecting: Promise<pg.Client> | undefined;
  private closed = false;
  originName: string | undefined;
  /** The session may stamp each transaction's commit time (see canStampCommitTime). */
  stampsCommitTime = false;

  constructor(private readonly options: FlushConnectionOptions) {}

  get(): Promise<pg.Client> {
    if (this.client) return Promise.resolve(this.client);
    this.connecting ??= this.open().finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  /** Drops the session (after an error: its state is unknown). */
  reset(): void {
    const client = this.client;
    this.client = undefined;
    if (client) client.end().catch(() => undefined);
  }

  /** Final: a session still being opened is ended as soon as it is up, never handed out. */
  async close(): Promise<void> {
    this.closed = true;
    const client = this.client;
    this.client = undefined;
    if (client) await client.end().catch(() => undefined);
  }

  private async open(): Promise<pg.Client> {
    const client = new pg.Client({
      ...pgConnectionOptions(this.options),
      connectionTimeoutMillis: 5_000,
      keepAlive: true,
      application_name: 'walpurge-flusher',
    });
    client.on('error', (error) => {
      this.options.logger.warn({ err: error }, 'flusher database session lost');
      if (this.client === client) this.client = undefined;
    });
    try {
      await client.connect();
      // When shutdown closes this session while a batch waits (say, for a lock), the server only
      // notices at its next read, holding the transaction and its row locks until then. With this
      // (PostgreSQL 14+, Linux; ignored elsewhere) it checks every second and rolls back at once.
      await client.query('SET client_connection_check_interval = 1000').catch(() => undefined);
      if (this.options.origin) {
        this.originName = await setupReplicationOrigin(client, this.options.origin);
        this.stampsCommitTime = await canStampCommitTime(client, this.options.logger);
      }
      // Retriable, so the batcher treats it like a lost connection (hands the rows back), never as
      // a permanent failure of the rows.
      if (this.closed)
        throw new WalpurgeError(ErrorCode.Aborted, 'the flusher is stopping', { retriable: true });
    } catch (error) {
      await client.end().catch(() => undefined);
      // Whatever went wrong opening or setting up the session (even an SQLSTATE that would be a
      // row's fault inside a batch, like 55000 "database not accepting connections", or a missing
      // privilege for the replication origin), it is not a row's: the rows wait (the flusher shows
      // it in its retries, logs and readiness), they never fail for it.
      throw isWalpurgeError(error) && error.retriable ? error : new SessionUnavailableError(error);
    }
    this.client = client;
    return client;
  }
}
