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
