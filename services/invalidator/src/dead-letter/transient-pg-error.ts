import { sqlState } from '@walpurge/core';

/** SQLSTATE classes that say "try again later": connection, rollback (serialization, deadlock), resources, operator intervention, system. */
const TRANSIENT_CLASSES = new Set(['08', '40', '53', '57', '58']);
const NODE_CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);
/** What node-postgres says, without a code, when the connection dies or cannot be had in time. */
const PG_CONNECTION_MESSAGES =
  /Connection terminated|connection timeout|timeout exceeded when trying to connect|Query read timeout/i;

/**
 * Whether a PostgreSQL error is worth retrying. Anything else (a missing table, a permission, a
 * constraint, bad data) is permanent: retrying it forever would hide it.
 */
export function isTransientPgError(error: unknown): boolean {
  const state = sqlState(error);
  if (state !== undefined) return TRANSIENT_CLASSES.has(state.slice(0, 2));
  if (typeof error !== 'object' || error === null) return false;
  const code = 'code' in error ? String(error.code) : undefined;
  if (code !== undefined && NODE_CONNECTION_CODES.has(code)) return true;
  return error instanceof Error && PG_CONNECTION_MESSAGES.test(error.message);
}
