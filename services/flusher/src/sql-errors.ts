import { ErrorCode, WalpurgeError, isConnectionError, isWalpurgeError, sqlState } from '@walpurge/core';

/**
 * How a failed batch write is handled:
 * - `unavailable`: the database cannot be reached or is restarting. Retried with backoff for as long
 *   as it takes (backpressure: jobs stay active, nothing fails), never blamed on a row.
 * - `transient`: worth retrying (serialization failure, deadlock, lock not available, out of
 *   resources, a query cancelled), but a row that causes it on every attempt must not stall the
 *   others: after flusher.maxBatchRetries the batch is split, and a single row still failing fails.
 * - `permanent`: everything else (constraint, trigger RAISE, bad data, index row too large, a row
 *   named twice …). The batch is split at once to find the row; that row fails alone.
 * The transient classes are listed (not the permanent ones): an SQLSTATE nobody thought of must
 * never mean "retry the same batch forever".
 */
export type WriteErrorKind = 'unavailable' | 'transient' | 'permanent';

/** 08 connection exception, 40 transaction rollback, 53 insufficient resources, 57 operator intervention, 58 system error. */
const TRANSIENT_CLASSES = new Set(['08', '40', '53', '57', '58']);
/** lock_not_available: the only retry-worthy state of class 55 (object not in prerequisite state). */
const TRANSIENT_STATES = new Set(['55P03']);
/**
 * The server, not the row: admin/crash shutdown, cannot connect now, too many connections; a
 * read-only transaction (a failover reached the demoted primary, or the database is read-only for
 * maintenance); the database gone for now (3D000); the replication origin briefly held by another
 * flusher's session (55006). Class 28 (password rotated, role locked) is added below.
 */
const UNAVAILABLE_STATES = new Set(['57P01', '57P02', '57P03', '53300', '25006', '3D000', '55006']);
const UNAVAILABLE_CLASSES = new Set(['08', '28']);
/**
 * Transient states that are about the whole server, never one row: out of resources (53: disk full,
 * out of memory), a statement cancelled (57014: statement_timeout, an administrator), a lock held
 * past lock_timeout (55P03: a migration), system errors (58). The batcher does not blame a single
 * row for them: see isServerWideError.
 */
const SERVER_WIDE_CLASSES = new Set(['53', '58']);
const SERVER_WIDE_STATES = new Set(['57014', '55P03']);
export function writeErrorKind(error: unknown): WriteErrorKind {
  if (isWalpurgeError(error)) return error.retriable ? 'unavailable' : 'permanent';
  const state = sqlState(error);
  if (state !== undefined) {
    if (UNAVAILABLE_CLASSES.has(state.slice(0, 2)) || UNAVAILABLE_STATES.has(state)) return 'unavailable';
    return TRANSIENT_CLASSES.has(state.slice(0, 2)) || TRANSIENT_STATES.has(state)
      ? 'transient'
      : 'permanent';
  }
  if (isConnectionError(error)) return 'unavailable';
  // Unknown: retried, but capped like any transient error, so it can never stall the queue.
  return 'transient';
}

/**
 * A transient error that says nothing about the rows of the batch (see SERVER_WIDE_*): the batcher
 * keeps retrying it with backoff, like an unavailable database, instead of failing a row for it.
 */
export function isServerWideError(error: unknown): boolean {
  const state = sqlState(error);
  return state !== undefined && (SERVER_WIDE_CLASSES.has(state.slice(0, 2)) || SERVER_WIDE_STATES.has(state));
}

/**
 * The flusher's session could not be opened or set up (refused, bad password after a rotation, the
 * database not accepting connections, the replication origin busy): nothing to do with any row, so
 * the batch is retried without limit (`unavailable`), never failed.
 */
export class SessionUnavailableError extends WalpurgeError {
  constructor(cause: unknown) {
    super(
      ErrorCode.DatabaseUnreachable,
      `cannot open the flusher's database session: ${describeSqlError(cause)}`,
      {
        retriable: true,
        cause,
      },
    );
  }
}

export function isPermanentWriteError(error: unknown): boolean {
  return writeErrorKind(error) === 'permanent';
}

/**
 * foreign_key_violation: usually a child flushed before its parent (write-behind has no order
 * across rows). The row is retried for flusher.foreignKeyRetryMs before it fails.
 */
export function isForeignKeyViolation(error: unknown): boolean {
  return sqlState(error) === '23503';
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
