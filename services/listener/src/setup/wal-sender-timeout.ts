import type { Client } from 'pg';

/**
 * The server ends a replication connection that has sent it nothing for `wal_sender_timeout`. The
 * listener's status update every `statusIntervalMs` is what keeps the connection alive while it
 * stops reading (backpressure: the server's own pings then go unanswered), so the interval must be
 * shorter, or every slow sink turns into a disconnect loop. Read on a normal connection to the same
 * database as the same role: database and role settings (ALTER DATABASE/ROLE … SET) apply to both.
 */
export async function readWalSenderTimeoutMs(client: Client): Promise<number> {
  const { rows } = await client.query<{ ms: number }>(
    "SELECT setting::int AS ms FROM pg_settings WHERE name = 'wal_sender_timeout'",
  );
  return rows[0]?.ms ?? 0;
}

export interface StatusIntervalCheck {
  /** The interval is not below the timeout: the server would kill the connection. */
  problem?: string;
  /** Below, but by less than half: one delayed update away from a disconnect. */
  warning?: string;
  /** What to change, for either. */
  fix: string;
}

export function checkStatusInterval(
  statusIntervalMs: number,
  walSenderTimeoutMs: number,
): StatusIntervalCheck {
  const suggested = Math.max(100, Math.floor(walSenderTimeoutMs / 3));
  const fix = `set database.statusIntervalMs to at most ${suggested} (a third of wal_sender_timeout), or raise wal_sender_timeout on the server (ALTER SYSTEM SET wal_sender_timeout = '60s'; SELECT pg_reload_conf())`;
  if (walSenderTimeoutMs <= 0)
    return {
      warning:
        "the server's wal_sender_timeout is 0 (off): PostgreSQL then never pings on its own, so a connection busy decoding a huge transaction whose changes are all filtered out can look dead to the listener after database.deadAfterIntervals silent status intervals",
      fix: "set wal_sender_timeout (the default is '60s'), or raise database.deadAfterIntervals",
    };
  if (statusIntervalMs >= walSenderTimeoutMs)
    return {
      problem: `database.statusIntervalMs (${statusIntervalMs} ms) is not below the server's wal_sender_timeout (${walSenderTimeoutMs} ms): PostgreSQL would end the replication connection whenever the listener pauses reading`,
      fix,
    };
  if (statusIntervalMs > walSenderTimeoutMs / 2)
    return {
      warning: `database.statusIntervalMs (${statusIntervalMs} ms) is more than half the server's wal_sender_timeout (${walSenderTimeoutMs} ms): one late status update and PostgreSQL ends the replication connection`,
      fix,
    };
  return { fix };
}
