import type pg from 'pg';

export interface SlotStatus {
  slot: string;
  exists: boolean;
  active?: boolean;
  activePid?: number | null;
  /** PostgreSQL 13+: reserved | extended | unreserved | lost. */
  walStatus?: string | null;
  confirmedLsn?: string | null;
  restartLsn?: string | null;
  currentLsn: string;
  /** WAL the server keeps for this slot (current − restart_lsn). */
  walRetainedBytes?: number | null;
  /** Changes not yet acknowledged by walpurge (current − confirmed_flush_lsn). */
  lagBytes?: number | null;
}

/** The slot as PostgreSQL sees it; works on a replica-less primary with any role that can read pg_replication_slots. */
export async function readSlotStatus(client: pg.Client, slot: string): Promise<SlotStatus> {
  const current = await client.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
  const currentLsn = current.rows[0]?.lsn ?? '0/0';
  const result = await client.query<{
    active: boolean;
    active_pid: number | null;
    wal_status: string | null;
    confirmed: string | null;
    restart: string | null;
    retained: string | null;
    lag: string | null;
  }>(
    `SELECT active, active_pid, wal_status, confirmed_flush_lsn::text AS confirmed, restart_lsn::text AS restart,
            pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::text AS retained,
            pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::text AS lag
       FROM pg_replication_slots WHERE slot_name = $1`,
    [slot],
  );
  const row = result.rows[0];
  if (!row) return { slot, exists: false, currentLsn };
  return {
    slot,
    exists: true,
    active: row.active,
    activePid: row.active_pid,
    walStatus: row.wal_status,
    confirmedLsn: row.confirmed,
    restartLsn: row.restart,
    currentLsn,
    walRetainedBytes: row.retained === null ? null : Number(row.retained),
    lagBytes: row.lag === null ? null : Number(row.lag),
  };
}
