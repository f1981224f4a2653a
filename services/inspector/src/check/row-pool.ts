import pg from 'pg';
import { pgConnectionOptions, type DatabaseConnection } from '@walpurge/config';
import { READ_TIMEOUT_MS } from './deadline.js';

/**
 * The confirm step's connections: few (one read per candidate, rare outside faults), and sessions
 * set to ISO dates in UTC so a timestamp version reads the same whatever the server's defaults.
 * After a fault many candidates come at once (every key whose purge was delayed): 4 connections
 * confirm a burst of indexed reads without queueing past the read deadline.
 */
export function createRowPool(database: DatabaseConnection): pg.Pool {
  const pool = new pg.Pool({
    ...pgConnectionOptions(database),
    max: 4,
    application_name: 'walpurge-inspector',
    options: '-c DateStyle=ISO -c TimeZone=UTC',
    // A frozen link or a locked row fails the confirm read (counted), it does not hang the check.
    connectionTimeoutMillis: READ_TIMEOUT_MS,
    query_timeout: READ_TIMEOUT_MS,
    // A pool's idle client erroring (server restart) must not crash the process: the next query reconnects.
  });
  pool.on('error', () => undefined);
  return pool;
}
