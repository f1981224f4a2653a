import pg from 'pg';
import { databaseAddress, pgConnectionOptions, type DatabaseConnection } from '@walpurge/config';
import {
  DATABASE_TLS,
  ErrorCode,
  WalpurgeError,
  tlsError,
  errorMessage,
  redactSecrets,
  sqlState,
} from '@walpurge/core';
import { connectionReason } from './connection-errors.js';

/**
 * Opens one connection for an operator command. Failure is a single-line WalpurgeError
 * ("cannot reach PostgreSQL at host:port/db: connection refused"), never a driver stack trace.
 */
export async function connectDatabase(
  database: DatabaseConnection,
  options: { timeoutMs?: number; /** Startup `options` (`-c name=value …`). */ sessionOptions?: string } = {},
): Promise<pg.Client> {
  const client = new pg.Client({
    ...pgConnectionOptions(database),
    connectionTimeoutMillis: options.timeoutMs ?? 5_000,
    application_name: 'walpurge-cli',
    ...(options.sessionOptions ? { options: options.sessionOptions } : {}),
  });
  // A server going away mid-command emits 'error' on the client; unhandled it would crash us.
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (error) {
    await client.end().catch(() => {});
    const address = databaseAddress(database.url);
    throw (
      tlsError(error, ErrorCode.DatabaseUnreachable, {
        what: 'PostgreSQL',
        address,
        settings: DATABASE_TLS,
      }) ??
      new WalpurgeError(
        ErrorCode.DatabaseUnreachable,
        `cannot reach PostgreSQL at ${address}: ${databaseFailureReason(error)}`,
        { retriable: true, cause: error },
      )
    );
  }
  return client;
}

/** Why PostgreSQL could not be reached: its own refusals first, then the socket's (shared table). */
function databaseFailureReason(error: unknown): string {
  const code = sqlState(error);
  if (code === '3D000') return 'database does not exist';
  if (code === '28P01' || code === '28000') return 'authentication failed';
  // Walks causes and AggregateError parts (IPv4+IPv6 attempts), whose message is empty.
  const socket = connectionReason(error);
  if (socket) return socket;
  const message = errorMessage(error);
  if (/timeout/i.test(message)) return 'connection timed out';
  return redactSecrets(message.split('\n')[0] ?? message);
}
