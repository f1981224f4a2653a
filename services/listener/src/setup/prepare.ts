import pg from 'pg';
import type { DatabaseConfig } from '@walpurge/config';
import { ErrorCode, WalpurgeError, type Logger } from '@walpurge/core';
import { formatLsn, parseLsn } from '@walpurge/protocol';
import type { PgTypeRow } from '../decode/value-converters.js';
import { loadTypes } from './catalog.js';
import { classifyPgError } from './pg-errors.js';
import {
  assertReplicaIdentity,
  assertTablesExist,
  checkServer,
  describeTables,
  withPartitionsExpanded,
} from './preflight.js';
import { publicationCoverage } from './publication-coverage.js';
import { ensurePublication, publishedTableNames } from './publication.js';
import { assertRulesPublished } from './rule-coverage.js';
import { ensureSlot, readSlot, slotBusy, type SlotState } from './slot.js';
import {
  checkSlotIdentity,
  ensureHistoryTable,
  readHistory,
  recordSlotIdentity,
  systemIdentifier,
} from './slot-history.js';
import { formatTableName, type TableName } from './table-names.js';
import { checkStatusInterval, readWalSenderTimeoutMs } from './wal-sender-timeout.js';
import { databaseAddress, pgConnectionOptions } from '@walpurge/config';

export interface PreparedDatabase {
  database: string;
  slot: SlotState;
  types: PgTypeRow[];
  /** Primary-key columns of every published table, by table OID. */
  primaryKeys: Map<number, string[]>;
  publishedTables: TableName[];
  /** The server's wal_sender_timeout for our connections (0 = none). */
  walSenderTimeoutMs: number;
  /** What the slot history records: the listener reports no position past `durableLsn` before recording it. */
  history: { table: string; systemIdentifier: string; durableLsn: bigint };
}

export interface PrepareOptions {
  config: DatabaseConfig;
  tables: readonly TableName[];
  /** rules[i].table at index i: each must reach the listener under that name. */
  ruleTables: readonly TableName[];
  /** The columns walpurge reads (rules, flusher version column), by `schema.table` (columnsReadByTable). */
  columnsRead: ReadonlyMap<string, readonly string[]>;
  /** Whether `tables` comes from database.tables (else from the rules). */
  configuredTables: boolean;
  logger: Logger;
  /** Set after the first successful start: a slot that vanished since then is data loss, not "create it". */
  slotMustExist: boolean;
}

/**
 * Everything that must hold before streaming, checked on every (re)connect: wal_level, privileges,
 * tables and their replica identity, the publication, the slot (created when missing, refused when
 * invalidated, SlotBusy when another reader holds it) and the type catalog for decoding.
 */
export async function prepareDatabase(options: PrepareOptions): Promise<PreparedDatabase> {
  const { config, logger } = options;
  const context = {
    slot: config.slot,
    publication: config.publication,
    address: databaseAddress(config.url),
  };
  const client = new pg.Client({
    ...pgConnectionOptions(config),
    application_name: 'walpurge-listener-setup',
    connectionTimeoutMillis: 10_000,
    keepAlive: true,
  });
  client.on('error', () => {}); // reported through the failing query instead
  try {
    await client.connect();
    const server = await checkServer(client);
    const walSenderTimeoutMs = await readWalSenderTimeoutMs(client);
    const interval = checkStatusInterval(config.statusIntervalMs, walSenderTimeoutMs);
    if (interval.problem)
      throw new WalpurgeError(ErrorCode.ConfigInvalid, interval.problem, { hint: interval.fix });
    if (interval.warning) logger.warn({ hint: interval.fix }, interval.warning);

    const wanted = await describeTables(client, options.tables);
    assertTablesExist(wanted.missing);
    assertReplicaIdentity(await withPartitionsExpanded(client, wanted.found));

    const created = await ensurePublication(client, {
      name: config.publication,
      create: config.createPublication,
      tables: options.tables,
      columnsRead: options.columnsRead,
      warn: (message, hint) => logger.warn({ publication: config.publication, hint }, message),
    });
    if (created)
      logger.info(
        { publication: config.publication, tables: options.tables.map(formatTableName) },
        'created publication',
      );

    assertRulesPublished(
      config.publication,
      await publicationCoverage(client, config.publication, options.ruleTables),
      options.configuredTables,
    );

    const publishedTables = await publishedTableNames(client, config.publication);
    const published = await describeTables(client, publishedTables);
    const primaryKeys = new Map(published.found.map((table) => [table.oid, table.primaryKey]));

    const history = await checkSlotHistory(client, config, logger);
    if (options.slotMustExist && !history.slotExists) {
      throw new WalpurgeError(
        ErrorCode.SlotMissing,
        `replication slot "${config.slot}" was dropped while walpurge was using it`,
        {
          hint: 'changes since then are lost: stop every listener and run `walpurge slot reset --purge-all`',
        },
      );
    }
    const failover = config.failoverSlot && server.serverVersion >= 170000;
    if (config.failoverSlot && !failover)
      logger.warn(
        { slot: config.slot, serverVersion: server.serverVersion },
        'database.failoverSlot needs PostgreSQL 17 or newer: the slot is created without failover, and a promoted standby will not have it',
      );
    const { slot, created: slotCreated } = await ensureSlot(client, config.slot, server.database, {
      failover,
    });
    if (slotCreated) {
      logger.info(
        {
          slot: config.slot,
          lsn: slot.confirmedFlushLsn === null ? null : formatLsn(slot.confirmedFlushLsn),
          failover,
        },
        'created replication slot',
      );
    } else if (failover && slot.failover === false) {
      logger.warn(
        { slot: config.slot },
        'database.failoverSlot is set but the existing slot was created without failover: a promoted standby will not have it (walpurge slot reset --purge-all re-creates it)',
      );
    }
    // First start with history (or a slot from before it existed): this slot is the reference now.
    let durableLsn = history.recorded;
    if (durableLsn === undefined) {
      await recordSlotIdentity(
        client,
        config.slotHistoryTable,
        config.slot,
        history.systemIdentifier,
        slot.confirmedFlushLsn ?? 0n,
        { replace: false },
      );
      // What is recorded now, ours or a replica's that started at the same moment.
      const recorded = await readHistory(client, config.slotHistoryTable, config.slot);
      durableLsn = recorded?.durableLsn ?? slot.confirmedFlushLsn ?? 0n;
      logger.info(
        { slot: config.slot, table: config.slotHistoryTable, lsn: formatLsn(durableLsn) },
        'recorded the replication slot in the slot history',
      );
    }
    if (slot.active) throw slotBusy(slot);

    const types = await loadTypes(client);
    return {
      database: server.database,
      slot,
      types,
      primaryKeys,
      publishedTables,
      walSenderTimeoutMs,
      history: {
        table: config.slotHistoryTable,
        systemIdentifier: history.systemIdentifier,
        durableLsn,
      },
    };
  } catch (error) {
    throw classifyPgError(error, context);
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * Refuses a slot that is not the one the history records (gone, re-created past the recorded LSN,
 * or on another cluster): streaming from it would silently skip every change in between.
 */
async function checkSlotHistory(
  client: pg.Client,
  config: DatabaseConfig,
  logger: Logger,
): Promise<{ systemIdentifier: string; recorded: bigint | undefined; slotExists: boolean }> {
  if (await ensureHistoryTable(client, config.slotHistoryTable))
    logger.info({ table: config.slotHistoryTable }, 'created the slot history table');
  const systemId = await systemIdentifier(client);
  // The slot first: a leader streaming meanwhile only raises the history (always at or ahead of the
  // slot), so a standby's check cannot see the slot past a history read before it.
  const existing = await readSlot(client, config.slot);
  const history = await readHistory(client, config.slotHistoryTable, config.slot);
  const { rows } = await client.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
  const refusal = checkSlotIdentity({
    slot: config.slot,
    table: config.slotHistoryTable,
    history,
    systemIdentifier: systemId,
    slotLsn: existing ? (existing.confirmedFlushLsn ?? 0n) : undefined,
    currentLsn: parseLsn(rows[0]?.lsn ?? '0/0'),
  });
  if (refusal) throw refusal;
  return { systemIdentifier: systemId, recorded: history?.durableLsn, slotExists: existing !== undefined };
}
