import pg from 'pg';
import type { Logger } from '@walpurge/core';
import { setupReplicationOrigin } from './origin.js';

export interface FlushConnectionOptions {
  url: string;
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
  originName: string | undefined;

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

  async close(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (client) await client.end().catch(() => undefined);
  }

  private async open(): Promise<pg.Client> {
    const client = new pg.Client({
      connectionString: this.options.url,
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
      if (this.options.origin) this.originName = await setupReplicationOrigin(client, this.options.origin);
    } catch (error) {
      await client.end().catch(() => undefined);
      throw error;
    }
    this.client = client;
    return client;
  }
}
