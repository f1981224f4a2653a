import type { ClientBase } from 'pg';
import { ErrorCode, WalpurgeError, sqlState, type Logger } from '@walpurge/core';

/**
 * CDC echo marking. Every flusher transaction runs in a session set up with this PostgreSQL
 * replication origin (pg_replication_origin_session_setup), so its commits carry the origin in the
 * WAL: pgoutput sends an Origin message before the transaction's changes, and the listener reports
 * it as `source.origin`. The invalidator uses that to tell the flusher's own commits apart: it purges
 * derived keys (lists, tags, patterns) as always, but for the row's own keys it only removes entries
 * that do not already hold the committed version (ECHO_PURGE_SCRIPT in @walpurge/rules): the value
 * the application just wrote stays cached (read-your-writes), a stale refill does not.
 *
 * PostgreSQL lets one session at a time use an origin, so a second flusher replica takes
 * `walpurge_write_behind_2`, and so on: match with isWriteBehindOrigin
 * (@walpurge/rules, re-exported by @walpurge/write-behind), not by equality.
 */

const MAX_REPLICAS = 32;

/**
 * Stamps the current transaction's commit with the time now. With a session-level origin,
 * PostgreSQL logs the session's origin timestamp with every commit, keeps it from the session's
 * first commit on, and logical decoding reports it as the commit time: without this, every batch
 * after the first would carry the commit time of the session's first one (the soak saw times to
 * consistency of minutes). LSN 0/0 leaves the origin's progress as it was (nothing reads it).
 */
export const STAMP_COMMIT_TIME = "SELECT pg_replication_origin_xact_setup('0/0', clock_timestamp())";

/**
 * Whether this session may stamp its transactions' commit time (STAMP_COMMIT_TIME), tried once at
 * setup so a missing privilege shows there, not per batch. Without the grant (a role set up before
 * the flusher needed it) the flusher keeps writing: its commits then carry the session's first
 * commit time, which only skews what is measured from it (the observer's timescales and time to
 * consistency, lag), never what is purged; it says so at every session start.
 */
export async function canStampCommitTime(client: ClientBase, logger: Logger): Promise<boolean> {
  try {
    await client.query(STAMP_COMMIT_TIME);
    return true;
  } catch (error) {
    if (sqlState(error) !== '42501') throw originError(error);
    logger.warn(
      { err: error },
      "flusher: may not stamp its commits with their own time (GRANT EXECUTE ON FUNCTION pg_replication_origin_xact_setup(pg_lsn, timestamptz) TO <role>): write-behind commits will carry the session's first commit time, skewing the consistency observer's timescales and lag; purges are unaffected",
    );
    return false;
  }
}

/** Sets the session's replication origin, creating it when missing; returns the name taken. */
export async function setupReplicationOrigin(client: ClientBase, base: string): Promise<string> {
  for (let n = 1; n <= MAX_REPLICAS; n += 1) {
    const name = n === 1 ? base : `${base}_${n}`;
    try {
      await client.query(
        'SELECT pg_replication_origin_create($1) WHERE pg_replication_origin_oid($1) IS NULL',
        [name],
      );
    } catch (error) {
      // Two replicas creating the same origin at once: the other one won, which is fine.
      if (sqlState(error) !== '23505') throw originError(error);
    }
    try {
      await client.query('SELECT pg_replication_origin_session_setup($1)', [name]);
    } catch (error) {
      if (sqlState(error) === '55006') continue; // in use by another flusher session
      throw originError(error);
    }
    return name;
  }
  throw new WalpurgeError(
    ErrorCode.DatabaseSetup,
    `all ${MAX_REPLICAS} replication origins ${base}[_n] are in use`,
    {
      hint: 'too many flusher replicas on one database, or stale sessions holding origins (see pg_replication_origin_status)',
    },
  );
}

function originError(error: unknown): unknown {
  if (sqlState(error) === '42501') {
    return new WalpurgeError(
      ErrorCode.Privileges,
      'the flusher may not mark its transactions with a replication origin',
      {
        cause: error,
        hint:
          'run it as a superuser, or GRANT EXECUTE ON FUNCTION pg_replication_origin_create(text), ' +
          'pg_replication_origin_session_setup(text), pg_replication_origin_xact_setup(pg_lsn, timestamptz) TO <role>; or set flusher.markOrigin: false (its writes will then purge their own cache keys)',
      },
    );
  }
  return error;
}
