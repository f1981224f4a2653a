import { DATABASE_TLS, ErrorCode, WalpurgeError, tlsError, errorMessage, sqlState } from '@walpurge/core';

const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/**
 * Maps errors from PostgreSQL (setup queries and START_REPLICATION) to WalpurgeErrors that say
 * whether retrying helps and what an operator should do.
 */
export function classifyPgError(
  error: unknown,
  context: {
    slot: string;
    publication: string;
    /** host:port, for TLS failures. */
    address?: string;
    /** A session has worked: a TLS failure that is no certificate verdict is then retriable. */
    connectedBefore?: boolean;
  },
): WalpurgeError {
  if (error instanceof WalpurgeError) return error;
  // A certificate problem is configuration: retrying cannot help, so the start fails with it.
  const address = context.address ?? 'database.url';
  const tls = tlsError(error, ErrorCode.DatabaseUnreachable, {
    what: 'PostgreSQL',
    address,
    settings: DATABASE_TLS,
    connectedBefore: context.connectedBefore === true,
  });
  if (tls) return tls;
  const state = sqlState(error);
  const message = errorMessage(error);
  const nodeCode = error && typeof error === 'object' && 'code' in error ? String(error.code) : undefined;
  if (state === '55006' || /replication slot .* is active for PID/i.test(message)) {
    return new WalpurgeError(
      ErrorCode.SlotBusy,
      `replication slot "${context.slot}" is in use by another reader: ${message}`,
      {
        retriable: true,
        hint: 'another walpurge listener is streaming from this slot; this instance waits as a standby and takes over when it stops',
        cause: error,
      },
    );
  }
  if (
    /can no longer get changes from replication slot|has been invalidated|wal_status.*lost/i.test(message)
  ) {
    return slotInvalidated(context.slot, message, error);
  }
  if (state === '42704' && /replication slot/i.test(message)) {
    return new WalpurgeError(
      ErrorCode.SlotMissing,
      `replication slot "${context.slot}" disappeared while walpurge was using it: ${message}`,
      {
        retriable: false,
        hint: 'someone dropped the slot, so changes since then are lost: stop every listener and run `walpurge slot reset --purge-all`',
        cause: error,
      },
    );
  }
  if (state === '42704' && /publication/i.test(message)) {
    return new WalpurgeError(
      ErrorCode.DatabaseSetup,
      `publication "${context.publication}" does not exist: ${message}`,
      {
        retriable: false,
        hint: 'restart walpurge with database.createPublication: true, or create it: CREATE PUBLICATION ... FOR TABLE ...',
        cause: error,
      },
    );
  }
  if (state === '28P01' || state === '28000') {
    return new WalpurgeError(ErrorCode.Privileges, `PostgreSQL refused the login: ${message}`, {
      retriable: false,
      hint: 'check the user and password in database.url, and that pg_hba.conf allows replication connections for this user ("host replication <user> ..." or "host all ...")',
      cause: error,
    });
  }
  if (state === '42501') {
    return new WalpurgeError(ErrorCode.Privileges, `insufficient privilege: ${message}`, {
      retriable: false,
      hint: 'the role needs REPLICATION (ALTER ROLE <user> WITH REPLICATION) and ownership of the published tables to create the publication',
      cause: error,
    });
  }
  if (state === '3D000') {
    return new WalpurgeError(ErrorCode.DatabaseUnreachable, `database does not exist: ${message}`, {
      retriable: false,
      hint: 'check the database name in database.url',
      cause: error,
    });
  }
  if (state === '53300' || /exceeds max_wal_senders|too many clients/i.test(message)) {
    return new WalpurgeError(
      ErrorCode.DatabaseUnreachable,
      `PostgreSQL has no free connection slot: ${message}`,
      {
        retriable: true,
        hint: 'raise max_wal_senders / max_connections, or stop idle replication clients',
        cause: error,
      },
    );
  }
  if (nodeCode && CONNECTION_CODES.has(nodeCode)) {
    return new WalpurgeError(ErrorCode.DatabaseUnreachable, `cannot reach PostgreSQL: ${message}`, {
      retriable: true,
      hint: 'check database.url and that PostgreSQL is running; walpurge keeps retrying',
      cause: error,
    });
  }
  return new WalpurgeError(ErrorCode.Replication, `PostgreSQL replication error: ${message}`, {
    retriable: true,
    cause: error,
  });
}

export function slotInvalidated(slot: string, reason: string, cause?: unknown): WalpurgeError {
  return new WalpurgeError(
    ErrorCode.SlotInvalidated,
    `replication slot "${slot}" was invalidated (${reason}): PostgreSQL removed WAL it still needed, so changes were lost`,
    {
      retriable: false,
      hint:
        'caches may be stale: stop every listener and run `walpurge slot reset --purge-all` (drops it, creates a fresh slot, purges everything the rules cover); ' +
        'raise max_slot_wal_keep_size (or keep the listener running) so it does not happen again',
      cause,
    },
  );
}
