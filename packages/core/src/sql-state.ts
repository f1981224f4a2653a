/**
 * SQLSTATE of a `pg` error (five digits or capitals), if it has one. Node's own errors also carry a
 * `code` (ECONNREFUSED…); those are not SQLSTATEs and give undefined.
 */
export function sqlState(error: unknown): string | undefined {
  if (
    error &&
    typeof error === 'object' &&
    'code' in error &&
    typeof error.code === 'string' &&
    /^[0-9A-Z]{5}$/.test(error.code)
  ) {
    return error.code;
  }
  return undefined;
}

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
  /Connection terminated|connection timeout|timeout exceeded when trying to connect|Query read timeout|Client has encountered a connection error/i;

/**
 * Whether an error without a SQLSTATE is the connection failing (Node's socket codes, or
 * node-postgres' own messages): the database may be back in a moment, so it is worth retrying.
 */
export function isConnectionError(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const code = 'code' in error ? String(error.code) : undefined;
  if (code !== undefined && NODE_CONNECTION_CODES.has(code)) return true;
  return error instanceof Error && PG_CONNECTION_MESSAGES.test(error.message);
}
