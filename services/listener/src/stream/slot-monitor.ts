import type pg from 'pg';
import { errorMessage, type Logger } from '@walpurge/core';
import type { SessionMetrics } from '../metrics.js';
import { closeSidePool, sidePool } from '../setup/side-pool.js';
import type { DatabaseConnection } from '@walpurge/config';

export interface SlotMonitorOptions {
  connection: DatabaseConnection;
  slot: string;
  pollIntervalMs: number;
  /** 0 = no heartbeats. */
  heartbeatIntervalMs: number;
  metrics: SessionMetrics;
  logger: Logger;
}

/**
 * While this instance streams: polls the slot for replication lag and retained WAL (the numbers an
 * operator alerts on), and emits a heartbeat message into the WAL so that the walsender keeps
 * sending fresh positions, and the slot keeps advancing, even when the database is quiet.
 */
export class SlotMonitor {
  private readonly pool: pg.Pool;
  private readonly timers: NodeJS.Timeout[] = [];
  private heartbeatWarned = false;
  /** Set by stop(): a poll still in flight must not write gauges the listener just cleared. */
  private stopped = false;

  constructor(private readonly options: SlotMonitorOptions) {
    this.pool = sidePool(options.connection, 'walpurge-listener-monitor');
  }

  start(): void {
    void this.poll();
    this.timers.push(setInterval(() => void this.poll(), this.options.pollIntervalMs));
    if (this.options.heartbeatIntervalMs > 0) {
      this.timers.push(setInterval(() => void this.heartbeat(), this.options.heartbeatIntervalMs));
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.timers) clearInterval(timer);
    await closeSidePool(this.pool);
  }

  private async poll(): Promise<void> {
    try {
      const { rows } = await this.pool.query<{
        lag: number | null;
        retained: number | null;
        wal_status: string | null;
        safe: number | null;
      }>(
        `WITH position AS (SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END AS lsn)
         SELECT (position.lsn - s.confirmed_flush_lsn)::float8 AS lag, (position.lsn - s.restart_lsn)::float8 AS retained,
                to_jsonb(s)->>'wal_status' AS wal_status, (to_jsonb(s)->>'safe_wal_size')::float8 AS safe
           FROM pg_replication_slots s, position WHERE s.slot_name = $1`,
        [this.options.slot],
      );
      const row = rows[0];
      if (!row || this.stopped) return;
      if (row.lag !== null) this.options.metrics.lagBytes.set(Math.max(0, row.lag));
      if (row.retained !== null) this.options.metrics.retainedWalBytes.set(Math.max(0, row.retained));
      if (row.safe !== null) this.options.metrics.safeWalBytes.set(row.safe);
      if (row.wal_status === 'unreserved' || row.wal_status === 'lost') {
        this.options.logger.error(
          { slot: this.options.slot, walStatus: row.wal_status, retainedBytes: row.retained },
          'replication slot is about to lose (or lost) WAL it needs: max_slot_wal_keep_size exceeded; raise it or fix what keeps the listener behind, or the slot will be invalidated and changes lost',
        );
      }
    } catch (error) {
      this.options.logger.debug({ err: error }, 'slot metrics query failed');
    }
  }

  private async heartbeat(): Promise<void> {
    try {
      await this.pool.query("SELECT pg_logical_emit_message(false, 'walpurge.heartbeat', now()::text)");
    } catch (error) {
      if (!this.heartbeatWarned) {
        this.heartbeatWarned = true;
        this.options.logger.warn(
          { err: error },
          `heartbeat failed (${errorMessage(error)}); set database.heartbeatIntervalMs: 0 to turn it off`,
        );
      }
    }
  }
}
