import { ErrorCode, WalpurgeError, isWalpurgeError, sqlState } from '@walpurge/core';

/**
 * Errors no retry can fix: the data or the statement is wrong (SQLSTATE class 22 data exception,
 * 23 integrity constraint violation, 42 syntax error or access rule violation, 44 check option), or
 * walpurge found the row unusable. Everything else (connection loss, shutdown, serialization
 * failure, lock timeout…) is worth retrying.
 */
export function isPermanentWriteError(error: unknown): boolean {
  if (isWalpurgeError(error)) return !error.retriable;
  const state = sqlState(error);
  if (!state) return false;
  return ['22', '23', '42', '44'].includes(state.slice(0, 2));
}

/** A row the database refused for good; its job fails with this reason. */
export class PermanentRowError extends WalpurgeError {
  constructor(message: string, cause?: unknown) {
    super(ErrorCode.FlushFailed, message, { retriable: false, cause });
  }
}

export function describeSqlError(error: unknown): string {
  const state = sqlState(error);
  const message = error instanceof Error ? error.message : String(error);
  const detail =
    error && typeof error === 'object' && 'detail' in error && typeof error.detail === 'string'
      ? ` (${error.detail})`
      : '';
  return state ? `${message}${detail} [SQLSTATE ${state}]` : `${message}${detail}`;
}
