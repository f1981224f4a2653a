import type { ClientBase, Pool } from 'pg';

type Queryable = ClientBase | Pool;
import { ErrorCode, WalpurgeError, errorMessage, sqlState } from '@walpurge/core';
import { formatLsn, parseLsn } from '@walpurge/protocol';
import { parseTableName, quoteTable } from './table-names.js';

/**
 * The slot's identity, kept in the database itself so that every listener replica (and a standby
 * taking over) sees it, and a restored or re-created database carries it along:
 *
 * - `system_identifier`: which PostgreSQL cluster the slot lived on (pg_control_system()).
 * - `durable_lsn`: walpurge reports a position to the slot only after recording it here, so the
 *   slot's confirmed_flush_lsn never passes it. Everything up to it was purged. A slot found past it
 *   was not moved by walpurge (re-created by someone else); a slot missing while a row exists was
 *   dropped or lost. Either way the changes after `durable_lsn` were never read: walpurge refuses
 *   to stream until `walpurge slot reset --purge-all` has purged everything.
 */
export interface SlotHistory {
  slot: string;
  systemIdentifier: string;
  /** Where the slot started when walpurge created (or first adopted) it. */
  startLsn: bigint;
  startedAt: Date;
  durableLsn: bigint;
  durableAt: Date;
}

export function historyTableSql(table: string): string {
  return quoteTable(parseTableName(table));
}

/** Creates the table when missing. Checked first: CREATE … IF NOT EXISTS needs CREATE on the schema even when it exists. */
export async function ensureHistoryTable(client: Queryable, table: string): Promise<boolean> {
  const sql = historyTableSql(table);
  const { rows } = await client.query<{ found: boolean }>('SELECT to_regclass($1) IS NOT NULL AS found', [
    sql,
  ]);
  if (rows[0]?.found) return false;
  try {
    await createHistoryTable(client, sql);
  } catch (error) {
    if (sqlState(error) !== '42501') throw error;
    throw new WalpurgeError(
      ErrorCode.Privileges,
      `cannot create the slot history table ${table}: ${errorMessage(error)}`,
      {
        hint: `grant CREATE on its schema for the first start (GRANT CREATE ON SCHEMA ${parseTableName(table).schema} TO <walpurge role>), or create it as its owner (the DDL is in docs/configuration.md) and GRANT SELECT, INSERT, UPDATE on it`,
        cause: error,
      },
    );
  }
  return true;
}

async function createHistoryTable(client: Queryable, sql: string): Promise<void> {
  await client.query(
    `CREATE TABLE IF NOT EXISTS ${sql} (
       slot_name text PRIMARY KEY,
       system_identifier text NOT NULL,
       start_lsn pg_lsn NOT NULL,
       started_at timestamptz NOT NULL DEFAULT now(),
       durable_lsn pg_lsn NOT NULL,
       durable_at timestamptz NOT NULL DEFAULT now()
     )`,
  );
  await client.query(
    `COMMENT ON TABLE ${sql} IS 'walpurge: identity and last durable LSN of its replication slots; a slot missing or past durable_lsn is refused until walpurge slot reset --purge-all'`,
  );
}

export async function systemIdentifier(client: Queryable): Promise<string> {
  const { rows } = await client.query<{ id: string }>(
    'SELECT system_identifier::text AS id FROM pg_control_system()',
  );
  const id = rows[0]?.id;
  if (id === undefined)
    throw new WalpurgeError(ErrorCode.DatabaseSetup, 'pg_control_system() returned no system identifier');
  return id;
}

export async function readHistory(
  client: Queryable,
  table: string,
  slot: string,
): Promise<SlotHistory | undefined> {
  const { rows } = await client.query<{
    system_identifier: string;
    start_lsn: string;
    started_at: Date;
    durable_lsn: string;
    durable_at: Date;
  }>(
    `SELECT system_identifier, start_lsn::text, started_at, durable_lsn::text, durable_at
       FROM ${historyTableSql(table)} WHERE slot_name = $1`,
    [slot],
  );
  const row = rows[0];
  if (!row) return undefined;
  return {
    slot,
    systemIdentifier: row.system_identifier,
    startLsn: parseLsn(row.start_lsn),
    startedAt: row.started_at,
    durableLsn: parseLsn(row.durable_lsn),
    durableAt: row.durable_at,
  };
}

/**
 * A new identity: the slot as it is now. `replace` (slot reset, after a purge-all) overwrites what is
 * recorded; without it (a first start) a row another replica recorded meanwhile is kept, since that
 * replica may already have raised it and reported a later position to the slot: going back would make
 * the next start refuse a healthy slot.
 */
export async function recordSlotIdentity(
  client: Queryable,
  table: string,
  slot: string,
  systemId: string,
  startLsn: bigint,
  options: { replace: boolean } = { replace: true },
): Promise<void> {
  const onConflict = options.replace
    ? `DO UPDATE
       SET system_identifier = excluded.system_identifier, start_lsn = excluded.start_lsn,
           started_at = now(), durable_lsn = excluded.durable_lsn, durable_at = now()`
    : 'DO NOTHING';
  await client.query(
    `INSERT INTO ${historyTableSql(table)} (slot_name, system_identifier, start_lsn, durable_lsn)
     VALUES ($1, $2, $3::text::pg_lsn, $3::text::pg_lsn)
     ON CONFLICT (slot_name) ${onConflict}`,
    [slot, systemId, formatLsn(startLsn)],
  );
}

/**
 * Moves the recorded durable LSN forward (never back); returns the recorded value. Undefined when
 * the row is gone or belongs to another cluster: then nothing may be reported to the slot.
 */
export async function recordDurableLsn(
  client: Queryable,
  table: string,
  slot: string,
  systemId: string,
  lsn: bigint,
): Promise<bigint | undefined> {
  const { rows } = await client.query<{ lsn: string }>(
    `UPDATE ${historyTableSql(table)}
        SET durable_lsn = greatest(durable_lsn, $3::text::pg_lsn), durable_at = now()
      WHERE slot_name = $1 AND system_identifier = $2
      RETURNING durable_lsn::text AS lsn`,
    [slot, systemId, formatLsn(lsn)],
  );
  const value = rows[0]?.lsn;
  return value === undefined ? undefined : parseLsn(value);
}

export interface IdentityCheck {
  slot: string;
  table: string;
  history: SlotHistory | undefined;
  systemIdentifier: string;
  /** The slot's confirmed_flush_lsn, or undefined when the slot does not exist. */
  slotLsn: bigint | undefined;
  /** The server's current WAL position, to name the end of a gap when the slot is gone. */
  currentLsn: bigint;
}

const WAY_OUT =
  'stop every listener, then run `walpurge slot reset --purge-all`: it creates the slot, purges everything the rules cover, and only then lets walpurge stream again';

/**
 * Whether the slot is the one walpurge recorded. Undefined: go on (no history yet, or it matches).
 * Otherwise the refusal, naming the gap of changes that were never read.
 */
export function checkSlotIdentity(check: IdentityCheck): WalpurgeError | undefined {
  const { history, slot } = check;
  if (!history) return undefined;
  const since = `${formatLsn(history.durableLsn)} (recorded ${history.durableAt.toISOString()})`;
  const details = {
    slot,
    historyTable: check.table,
    recordedSystemIdentifier: history.systemIdentifier,
    systemIdentifier: check.systemIdentifier,
    recordedLsn: formatLsn(history.durableLsn),
    recordedAt: history.durableAt.toISOString(),
    slotLsn: check.slotLsn === undefined ? null : formatLsn(check.slotLsn),
    currentLsn: formatLsn(check.currentLsn),
  };
  if (history.systemIdentifier !== check.systemIdentifier) {
    return new WalpurgeError(
      ErrorCode.SlotMissing,
      `replication slot "${slot}" was recorded on another PostgreSQL cluster (system identifier ${history.systemIdentifier}, this one is ${check.systemIdentifier}): the database was restored, copied or upgraded, and changes after LSN ${since} on the old cluster, and everything since on this one, were never purged`,
      { hint: WAY_OUT, details },
    );
  }
  if (check.slotLsn === undefined) {
    return new WalpurgeError(
      ErrorCode.SlotMissing,
      `replication slot "${slot}" is gone (dropped, lost in a failover, or removed after being invalidated): changes from LSN ${since} to now (${formatLsn(check.currentLsn)}) were never purged, and walpurge will not silently start a new slot`,
      { hint: WAY_OUT, details },
    );
  }
  if (check.slotLsn > history.durableLsn) {
    return new WalpurgeError(
      ErrorCode.SlotMissing,
      `replication slot "${slot}" starts at LSN ${formatLsn(check.slotLsn)}, past the last position walpurge recorded, ${since}: it was re-created by someone else, and changes from ${formatLsn(history.durableLsn)} to ${formatLsn(check.slotLsn)} were never purged`,
      { hint: WAY_OUT, details },
    );
  }
  return undefined;
}
