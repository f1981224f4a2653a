import { stateTableSql } from '../state-table-sql.js';
import type { ClientBase, Pool } from 'pg';
import { ErrorCode, WalpurgeError, errorMessage, sqlState } from '@walpurge/core';

type Queryable = ClientBase | Pool;

/**
 * The inline transport's dead-letter table (`database.deadLetterTable`). Embedded mode keeps its
 * refused events in the database because it is the one durable store it always has: the cache
 * Redis may evict (LRU) and a queue Redis only exists with the flusher, while the database is
 * there, durable, backed up, and selecting by rule, table, cause or time is plain SQL.
 */

export { stateTableSql as deadLetterTableSql } from '../state-table-sql.js';

/** The DDL, also printed in docs/configuration.md for operators who create it themselves. */
export function deadLetterTableDdl(sql: string): string[] {
  return [
    `CREATE TABLE IF NOT EXISTS ${sql} (
       id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
       dead_lettered_at timestamptz NOT NULL DEFAULT now(),
       cause text NOT NULL,
       target text NOT NULL,
       error_code text NOT NULL,
       error_message text NOT NULL,
       table_name text NOT NULL,
       lsn pg_lsn NOT NULL,
       commit_ts timestamptz NOT NULL,
       rules text[] NOT NULL,
       event jsonb NOT NULL
     )`,
    `COMMENT ON TABLE ${sql} IS 'walpurge: change events a purge target refused for good (inline transport); walpurge dlq list|redrive'`,
  ];
}

/**
 * Creates the table when missing. Checked first: CREATE … IF NOT EXISTS needs CREATE on the schema
 * even when the table exists, and a role that was given a ready-made table may lack that.
 */
export async function ensureDeadLetterTable(client: Queryable, table: string): Promise<boolean> {
  const sql = stateTableSql(table);
  const { rows } = await client.query<{ found: boolean }>('SELECT to_regclass($1) IS NOT NULL AS found', [
    sql,
  ]);
  if (rows[0]?.found) return false;
  try {
    for (const statement of deadLetterTableDdl(sql)) await client.query(statement);
  } catch (error) {
    if (sqlState(error) !== '42501') throw error;
    throw new WalpurgeError(
      ErrorCode.Privileges,
      `cannot create the dead-letter table ${table}: ${errorMessage(error)}`,
      {
        hint: `grant CREATE on its schema for the first start, or create it as its owner (the DDL is in docs/configuration.md) and GRANT SELECT, INSERT, DELETE on it`,
        cause: error,
      },
    );
  }
  return true;
}
