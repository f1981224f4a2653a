import type { DatabaseConfig } from '@walpurge/config';
import { ErrorCode, WalpurgeError } from '@walpurge/core';
import {
  ensureHistoryTable,
  ensurePublication,
  ensureSlot,
  readHistory,
  readSlot,
  recordSlotIdentity,
  systemIdentifier,
  type SlotHistory,
  type TableName,
} from '@walpurge/listener';
import { formatLsn } from '@walpurge/protocol';
import { connectDatabase } from '../live/connect-database.js';
import type { PurgeAllSummary } from '../purge/purge-all.js';

export interface ResetSlotOptions {
  database: DatabaseConfig;
  /** Tables the publication must hold (created with them when missing, as the listener would). */
  tables: readonly TableName[];
  /** The columns walpurge reads (rules, flusher version column), by `schema.table` (columnsReadByTable): a column list must keep them. */
  columnsRead: ReadonlyMap<string, readonly string[]>;
  /**
   * Purges everything the rules can derive (`purgeAll`). Runs after the new slot exists, so every
   * change from then on is streamed, and before the history accepts the slot, so no listener can
   * stream from it while stale entries may remain.
   */
  purgeAll(): Promise<PurgeAllSummary>;
  /** Record the new slot even though some templates could not be purged wholesale. */
  acceptUnpurgeable?: boolean;
  onProgress?: (line: string) => void;
}

export interface ResetSlotResult {
  slot: string;
  /** What the history held before: the start of the gap that was purged. */
  previous: SlotHistory | undefined;
  /** Dropped because PostgreSQL had invalidated it, or it lacked the failover the config asks for. */
  droppedOld: string | undefined;
  created: boolean;
  /** Where streaming will start. */
  startLsn: string;
  failover: boolean;
  purge: PurgeAllSummary;
}

/**
 * `walpurge slot reset --purge-all`: the only way past a lost or re-created slot. Order matters:
 * 1. the slot (created if missing, re-created if invalidated): changes from here on will be read;
 * 2. purge everything the rules can derive: nothing older than the slot can stay stale;
 * 3. record the slot as walpurge's in the slot history: only now will a listener stream from it.
 * A failure at any step leaves the history as it was, so listeners keep refusing.
 */
export async function resetSlot(options: ResetSlotOptions): Promise<ResetSlotResult> {
  const { database } = options;
  const progress = options.onProgress ?? ((): void => {});
  const client = await connectDatabase(database);
  try {
    const { rows } = await client.query<{ database: string; version: number }>(
      "SELECT current_database() AS database, current_setting('server_version_num')::int AS version",
    );
    const server = rows[0] as { database: string; version: number };
    const failover = database.failoverSlot && server.version >= 170000;
    await ensureHistoryTable(client, database.slotHistoryTable);
    const systemId = await systemIdentifier(client);
    const previous = await readHistory(client, database.slotHistoryTable, database.slot);

    let droppedOld: string | undefined;
    const existing = await readSlot(client, database.slot);
    if (existing?.active) {
      throw new WalpurgeError(
        ErrorCode.SlotBusy,
        `replication slot "${database.slot}" is in use by backend pid ${existing.activePid ?? '?'}`,
        { hint: 'stop every listener first (a running one would stream before the purge)' },
      );
    }
    const lost = existing && (existing.walStatus === 'lost' || existing.invalidationReason !== null);
    const lacksFailover = existing && failover && existing.failover === false;
    if (existing && (lost || lacksFailover)) {
      droppedOld = lost
        ? `invalidated (${existing.invalidationReason ?? `wal_status ${existing.walStatus}`})`
        : 'created without failover';
      progress(`dropping replication slot "${database.slot}": ${droppedOld}`);
      await client.query('SELECT pg_drop_replication_slot($1)', [database.slot]);
    }

    // Before the slot, as the listener does: pgoutput fails on changes decoded from before the
    // publication existed (the history row written below would be one).
    await ensurePublication(client, {
      name: database.publication,
      create: database.createPublication,
      tables: options.tables,
      columnsRead: options.columnsRead,
      warn: (message, hint) => progress(`warning: ${message} (${hint})`),
    });
    const { slot, created } = await ensureSlot(client, database.slot, server.database, { failover });
    const startLsn = slot.confirmedFlushLsn ?? 0n;
    progress(
      `${created ? 'created' : 'kept'} replication slot "${database.slot}" at ${formatLsn(startLsn)}; purging everything the rules derive`,
    );

    const purge = await options.purgeAll();
    if (!purge.complete && options.acceptUnpurgeable !== true) {
      throw new WalpurgeError(
        ErrorCode.PurgeFailed,
        `${purge.unpurgeable.length} template(s) could not be purged wholesale, so entries from before the new slot may stay stale; the slot history is unchanged and listeners keep refusing`,
        {
          hint: 'purge those entries yourself (see NOT PURGED above), then run again with --accept-unpurgeable',
          details: { unpurgeable: purge.unpurgeable },
        },
      );
    }

    await recordSlotIdentity(client, database.slotHistoryTable, database.slot, systemId, startLsn);
    return {
      slot: database.slot,
      previous,
      droppedOld,
      created,
      startLsn: formatLsn(startLsn),
      failover: slot.failover === true,
      purge,
    };
  } finally {
    await client.end().catch(() => {});
  }
}
