import { isConnectionError, sqlState } from '@walpurge/core';

/** SQLSTATE classes that say "try again later": connection, rollback (serialization, deadlock), resources, operator intervention, system. */
const TRANSIENT_CLASSES = new Set(['08', '40', '53', '57', '58']);
/**
 * Whether a PostgreSQL error is worth retrying. Anything else (a missing table, a permission, a
 * constraint, bad data) is permanent: retrying it forever would hide it.
 */
export function isTransientPgError(error: unknown): boolean {
  const state = sqlState(error);
  if (state !== undefined) return TRANSIENT_CLASSES.has(state.slice(0, 2));
  return isConnectionError(error);
}
