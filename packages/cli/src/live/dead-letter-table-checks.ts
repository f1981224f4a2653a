import type pg from 'pg';
import type { ConfigProblem, DatabaseConfig } from '@walpurge/config';
import { deadLetterTableSql } from '@walpurge/invalidator';

type ProblemAt = (path: ReadonlyArray<PropertyKey>, message: string) => ConfigProblem;

/** The columns the inline dead-letter sink writes and `walpurge dlq` reads. */
const COLUMNS = [
  'id',
  'dead_lettered_at',
  'cause',
  'target',
  'error_code',
  'error_message',
  'table_name',
  'lsn',
  'commit_ts',
  'rules',
  'event',
];

/**
 * Inline transport: whether the daemon can store a refused event. A table it cannot write (or
 * create) would stop the pipeline at the first refusal, long after a `validate` that said yes.
 * Reads only: the table is not created here.
 */
export async function deadLetterTableProblems(
  client: pg.Client,
  database: DatabaseConfig,
  problemAt: ProblemAt,
): Promise<ConfigProblem[]> {
  const table = database.deadLetterTable;
  const sql = deadLetterTableSql(table);
  const schema = table.includes('.') ? (table.split('.')[0] ?? 'public') : 'public';
  const { rows } = await client.query<{
    found: boolean;
    usable: boolean | null;
    can_create: boolean | null;
    columns: string[] | null;
  }>(
    `SELECT to_regclass($1) IS NOT NULL AS found,
            CASE WHEN to_regclass($1) IS NOT NULL THEN
              has_table_privilege(to_regclass($1), 'SELECT')
              AND has_table_privilege(to_regclass($1), 'INSERT')
              AND has_table_privilege(to_regclass($1), 'DELETE') END AS usable,
            (SELECT has_schema_privilege(oid, 'CREATE') FROM pg_namespace WHERE nspname = $2) AS can_create,
            (SELECT array_agg(attname::text) FROM pg_attribute
              WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped) AS columns`,
    [sql, schema],
  );
  const row = rows[0];
  const at = (message: string): ConfigProblem[] => [problemAt(['database', 'deadLetterTable'], message)];
  if (!row?.found) {
    if (row?.can_create === null)
      return at(
        `the dead-letter table's schema "${schema}" does not exist (inline transport stores refused events in ${table})`,
      );
    if (row?.can_create === false)
      return at(
        `the dead-letter table ${table} does not exist and this role may not create it in schema "${schema}": grant CREATE on the schema, or create it (DDL in docs/configuration.md) and grant SELECT, INSERT, DELETE`,
      );
    return [];
  }
  const missing = COLUMNS.filter((column) => !(row.columns ?? []).includes(column));
  if (missing.length > 0)
    return at(
      `the dead-letter table ${table} lacks the column(s) ${missing.join(', ')} (DDL in docs/configuration.md)`,
    );
  if (row.usable === false)
    return at(`this role may not SELECT, INSERT and DELETE on the dead-letter table ${table}`);
  return [];
}
