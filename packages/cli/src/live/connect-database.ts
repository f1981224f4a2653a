import pg from 'pg';
import { ErrorCode, WalpurgeError, errorMessage, redactSecrets } from '@walpurge/core';

/** host:port/db of a connection URL, password-free, for messages. */
export function describeDatabase(url: string): string {
  try {
    const parsed = new URL(url);
    const db = parsed.pathname.replace(/^\//, '') || '(default db)';
    return `${parsed.hostname}:${parsed.port || '5432'}/${db}`;
  } catch {
    return redactSecrets(url);
  }
}

/**
 * Opens one connection for an operator command. Failure is a single-line WalpurgeError
 * ("cannot reach PostgreSQL at host:port/db: connection refused"), never a driver stack trace.
 */
export async function connectDatabase(url: string, options: { timeoutMs?: number } = {}): Promise<pg.Client> {
  const client = new pg.Client({
    connectionString: url,
    connectionTimeoutMillis: options.timeoutMs ?? 5_000,
    application_name: 'walpurge-cli',
  });
  // A server going away mid-command emits 'error' on the client; unhandled it would crash us.
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (error) {
    await client.end().catch(() => {});
    throw new WalpurgeError(
      ErrorCode.DatabaseUnreachable,
      `cannot reach PostgreSQL at ${describeDatabase(url)}: ${connectionReason(error)}`,
      {
        retriable: true,
        cause: error,
      },
    );
  }
  return client;
}

function connectionReason(error: unknown): string {
  const code = (error as { code?: string }).code;
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (code === 'ENOTFOUND') return 'host not found';
  if (code === 'ETIMEDOUT') return 'connection timed out';
  if (code === '3D000') return 'database does not exist';
  if (code === '28P01' || code === '28000') return 'authentication failed';
  const message = errorMessage(error);
  if (/timeout/i.test(message)) return 'connection timed out';
  // AggregateError (IPv4+IPv6 attempts) has an empty message; its parts carry the reason.
  if (!message && error instanceof AggregateError) return error.errors.map(connectionReason).join('; ');
  return redactSecrets(message.split('\n')[0] ?? message);
}
