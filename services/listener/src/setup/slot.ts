import type { ClientBase } from 'pg';
import { ErrorCode, WalpurgeError } from '@walpurge/core';
import { parseLsn } from '@walpurge/protocol';
import { slotInvalidated } from './pg-errors.js';

export interface SlotState {
  name: string;
  plugin: string | null;
  slotType: string;
  database: string | null;
  active: boolean;
  activePid: number | null;
  confirmedFlushLsn: bigint | null;
  restartLsn: bigint | null;
  /** PostgreSQL 13+: reserved | extended | unreserved | lost. */
  walStatus: string | null;
  /** 17+ `invalidation_reason`; before, wal_removed for wal_status 'lost' and 16's `conflicting` otherwise. */
  invalidationReason: string | null;
  /** PostgreSQL 17+: synchronized to standbys (sync_replication_slots); null before 17. */
  failover: boolean | null;
}

/** Reads the slot with to_jsonb so that columns added in newer PostgreSQL versions are optional. */
export async function readSlot(client: ClientBase, name: string): Promise<SlotState | undefined> {
  const { rows } = await client.query<{ slot: Record<string, unknown> }>(
    'SELECT to_jsonb(s) AS slot FROM pg_replication_slots s WHERE slot_name = $1',
    [name],
  );
  const slot = rows[0]?.slot;
  if (!slot) return undefined;
  const text = (key: string): string | null => (typeof slot[key] === 'string' ? (slot[key] as string) : null);
  const lsn = (key: string): bigint | null => {
    const value = text(key);
    return value === null ? null : parseLsn(value);
  };
  const walStatus = text('wal_status');
  // 17+ names the cause. Before, a slot that lost WAL (max_slot_wal_keep_size) shows only
  // wal_status = 'lost', and 16 also sets `conflicting`, which otherwise means a standby's slot lost
  // rows it needed to recovery: 'lost' is the WAL removal either way.
  const reason =
    text('invalidation_reason') ??
    (walStatus === 'lost' ? 'wal_removed' : slot['conflicting'] === true ? 'conflict with recovery' : null);
  return {
    name,
    plugin: text('plugin'),
    slotType: text('slot_type') ?? 'logical',
    database: text('database'),
    active: slot['active'] === true,
    activePid: typeof slot['active_pid'] === 'number' ? slot['active_pid'] : null,
    confirmedFlushLsn: lsn('confirmed_flush_lsn'),
    restartLsn: lsn('restart_lsn'),
    walStatus,
    invalidationReason: reason,
    failover: typeof slot['failover'] === 'boolean' ? slot['failover'] : null,
  };
}

/** A slot that lost WAL (max_slot_wal_keep_size) or was invalidated: fail loudly, never stream from it. */
export function assertSlotUsable(slot: SlotState, database: string): void {
  if (slot.slotType !== 'logical' || (slot.plugin !== null && slot.plugin !== 'pgoutput')) {
    throw new WalpurgeError(
      ErrorCode.DatabaseSetup,
      `replication slot "${slot.name}" exists but is a ${slot.slotType} slot for plugin ${slot.plugin ?? 'none'}; walpurge needs a logical pgoutput slot`,
      {
        hint: 'configure another database.slot name (walpurge creates it), or drop this slot if nothing else uses it',
      },
    );
  }
  if (slot.database !== null && slot.database !== database) {
    throw new WalpurgeError(
      ErrorCode.DatabaseSetup,
      `replication slot "${slot.name}" belongs to database "${slot.database}", not "${database}"`,
      {
        hint: 'slot names are cluster-wide: configure a different database.slot per database',
      },
    );
  }
  if (slot.walStatus === 'lost' || slot.invalidationReason !== null) {
    throw slotInvalidated(slot.name, slot.invalidationReason ?? `wal_status is '${slot.walStatus}'`);
  }
}

export function slotBusy(slot: SlotState): WalpurgeError {
  return new WalpurgeError(
    ErrorCode.SlotBusy,
    `replication slot "${slot.name}" is in use by PostgreSQL backend ${slot.activePid ?? '?'}`,
    {
      retriable: true,
      hint: 'another walpurge listener is streaming from this slot; this instance waits as a standby and takes over when it stops',
    },
  );
}

/**
 * Creates the slot when missing (checking free capacity first); returns its state. `failover`
 * (PostgreSQL 17+ only) makes PostgreSQL synchronize the slot to standbys.
 */
export async function ensureSlot(
  client: ClientBase,
  name: string,
  database: string,
  options: { failover?: boolean } = {},
): Promise<{ slot: SlotState; created: boolean }> {
  const existing = await readSlot(client, name);
  if (existing) {
    assertSlotUsable(existing, database);
    return { slot: existing, created: false };
  }
  const { rows } = await client.query<{ used: number; max: number }>(
    "SELECT (SELECT count(*) FROM pg_replication_slots)::int AS used, current_setting('max_replication_slots')::int AS max",
  );
  const capacity = rows[0];
  if (capacity && capacity.used >= capacity.max) {
    throw new WalpurgeError(
      ErrorCode.SlotCapacity,
      `no free replication slot: ${capacity.used} of max_replication_slots=${capacity.max} in use`,
      {
        hint: 'raise max_replication_slots (needs a restart) or drop unused slots (SELECT slot_name, active FROM pg_replication_slots)',
        details: capacity,
      },
    );
  }
  try {
    await client.query(
      options.failover === true
        ? "SELECT pg_create_logical_replication_slot($1, 'pgoutput', false, false, true)"
        : "SELECT pg_create_logical_replication_slot($1, 'pgoutput')",
      [name],
    );
  } catch (error) {
    // Created by another instance at the same moment: use it.
    if ((error as { code?: string }).code !== '42710') throw error;
  }
  const slot = await readSlot(client, name);
  if (!slot)
    throw new WalpurgeError(
      ErrorCode.DatabaseSetup,
      `replication slot "${name}" vanished right after being created`,
      { retriable: true },
    );
  return { slot, created: true };
}
