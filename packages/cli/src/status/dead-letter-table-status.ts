import type pg from 'pg';
import { deadLetterTableSql } from '@walpurge/invalidator';

export interface DeadLetterTableStatus {
  table: string;
  /** Rows in database.deadLetterTable: events refused for good, not yet redriven. */
  deadLetters: number;
}

/** Inline transport: how many refused events wait in the dead-letter table (0 before it exists). */
export async function readDeadLetterTableStatus(
  client: pg.Client,
  table: string,
): Promise<DeadLetterTableStatus> {
  const sql = deadLetterTableSql(table);
  const { rows } = await client.query<{ found: boolean }>('SELECT to_regclass($1) IS NOT NULL AS found', [
    sql,
  ]);
  if (!rows[0]?.found) return { table, deadLetters: 0 };
  const counted = await client.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${sql}`);
  return { table, deadLetters: Number(counted.rows[0]?.n ?? 0) };
}
