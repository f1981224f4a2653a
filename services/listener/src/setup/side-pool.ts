import pg from 'pg';
import { settlesWithin } from '@walpurge/core';
import { pgConnectionOptions, type DatabaseConnection } from '@walpurge/config';

/** Longest a query on a side connection may take; past it the query fails with its own error. */
const SIDE_QUERY_TIMEOUT_MS = 10_000;
/** Longest a stop waits for a side connection to close; the rest finishes in the background. */
const SIDE_CLOSE_MS = 1000;

/**
 * One connection beside the replication stream (slot monitor, slot history). A dead connection
 * (failover, network partition) must neither hold a query until TCP gives up, some 15 minutes
 * later (TCP keepalive, query_timeout), nor hold the listener's stop or reconnect (closeSidePool).
 */
export function sidePool(connection: DatabaseConnection, applicationName: string): pg.Pool {
  const pool = new pg.Pool({
    ...pgConnectionOptions(connection),
    max: 1,
    application_name: applicationName,
    idleTimeoutMillis: 30_000,
    keepAlive: true,
    query_timeout: SIDE_QUERY_TIMEOUT_MS,
  });
  pool.on('error', () => {}); // idle client errors: the next query reconnects
  return pool;
}

/**
 * Lets `inFlight` (a query the owner started) finish, then ends the pool, waiting at most
 * SIDE_CLOSE_MS: on a dead connection pool.end() waits for query_timeout.
 */
export async function closeSidePool(pool: pg.Pool, inFlight?: Promise<unknown>): Promise<void> {
  await settlesWithin(
    (async () => {
      await inFlight?.catch(() => {});
      await pool.end().catch(() => {});
    })(),
    SIDE_CLOSE_MS,
  );
}
