import type pg from 'pg';
import type { ConfigProblem, DatabaseConfig } from '@walpurge/config';
import {
  checkSlotIdentity,
  historyTableSql,
  readHistory,
  readSlot,
  systemIdentifier,
} from '@walpurge/listener';
import { parseLsn } from '@walpurge/protocol';

type ProblemAt = (path: ReadonlyArray<PropertyKey>, message: string) => ConfigProblem;

/**
 * The slot against its recorded history (the refusal a listener would meet at start, with the gap
 * it names) and options the server cannot honour. Reads only: the history table is not created here.
 */
export async function checkSlot(
  client: pg.Client,
  database: DatabaseConfig,
  problemAt: ProblemAt,
): Promise<{ problems: ConfigProblem[]; warnings: ConfigProblem[] }> {
  const problems: ConfigProblem[] = [];
  const warnings: ConfigProblem[] = [];
  const { rows } = await client.query<{ version: number; history: boolean; lsn: string }>(
    `SELECT current_setting('server_version_num')::int AS version, to_regclass($1) IS NOT NULL AS history,
            pg_current_wal_lsn()::text AS lsn`,
    [historyTableSql(database.slotHistoryTable)],
  );
  const server = rows[0] as { version: number; history: boolean; lsn: string };
  if (database.failoverSlot && server.version < 170000) {
    warnings.push(
      problemAt(
        ['database', 'failoverSlot'],
        `failover slots need PostgreSQL 17 or newer (this server is ${server.version}): the slot is created without failover, and after a failover walpurge refuses to start until \`walpurge slot reset --purge-all\``,
      ),
    );
  }
  if (server.history) {
    // The slot before the history: a listener streaming meanwhile only raises the history.
    const slot = await readSlot(client, database.slot);
    const refusal = checkSlotIdentity({
      slot: database.slot,
      table: database.slotHistoryTable,
      history: await readHistory(client, database.slotHistoryTable, database.slot),
      systemIdentifier: await systemIdentifier(client),
      slotLsn: slot ? (slot.confirmedFlushLsn ?? 0n) : undefined,
      currentLsn: parseLsn(server.lsn),
    });
    if (refusal)
      problems.push(problemAt(['database', 'slot'], `${refusal.message} (fix: ${refusal.hint ?? ''})`));
  }
  return { problems, warnings };
}
