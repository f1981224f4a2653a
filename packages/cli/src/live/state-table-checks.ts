import type pg from 'pg';
import type { ConfigProblem, DatabaseConfig } from '@walpurge/config';
import { deadLetterTableSql } from '@walpurge/invalidator';

type ProblemAt = (path: ReadonlyArray<PropertyKey>, message: string) => ConfigProblem;

/** A table the inline transport keeps its durable state in, and what the daemon needs of it. */
interface StateTable {
  option: 'deadLetterTable' | 'cdnQueueTable';
  /** What it is, in messages: "the dead-letter table". */
  label: string;
  /** What the daemon does with it, in messages. */
  purpose: string;
  /** The columns the daemon writes and reads. */
  columns: readonly string[];
}

const DEAD_LETTERS: StateTable = {
  option: 'deadLetterTable',
  label: 'dead-letter table',
  purpose: 'stores refused events',
  columns: [
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
  ],
};

const CDN_QUEUE: StateTable = {
  option: 'cdnQueueTable',
  label: 'CDN queue table',
  purpose: 'queues CDN purges',
  columns: ['id', 'provider', 'event', 'enqueued_at'],
};

/**
 * Inline transport: whether the daemon can store a refused event. A table it cannot write (or
 * create) would stop the pipeline at the first refusal, long after a `validate` that said yes.
 * Reads only: the table is not created here.
 */
export function deadLetterTableProblems(
  client: pg.Client,
  database: DatabaseConfig,
  problemAt: ProblemAt,
): Promise<ConfigProblem[]> {
  return stateTableProblems(client, database, DEAD_LETTERS, problemAt);
}

/**
 * Inline transport with a cdn section: whether the daemon can queue CDN purges. The daemon creates
 * the table at start and refuses to run when it cannot; `validate` must say so first.
 */
export function cdnQueueTableProblems(
  client: pg.Client,
  database: DatabaseConfig,
  problemAt: ProblemAt,
): Promise<ConfigProblem[]> {
  return stateTableProblems(client, database, CDN_QUEUE, problemAt);
}

async function stateTableProblems(
  client: pg.Client,
  database: DatabaseConfig,
  spec: StateTable,
  problemAt: ProblemAt,
): Promise<ConfigProblem[]> {
  const table = database[spec.option];
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
  const at = (message: string): ConfigProblem[] => [problemAt(['database', spec.option], message)];
  if (!row?.found) {
    if (row?.can_create === null)
      return at(
        `the ${spec.label}'s schema "${schema}" does not exist (the inline transport ${spec.purpose} in ${table})`,
      );
    if (row?.can_create === false)
      return at(
        `the ${spec.label} ${table} does not exist and this role may not create it in schema "${schema}": grant CREATE on the schema, or create it (DDL in docs/configuration.md) and grant SELECT, INSERT, DELETE`,
      );
    return [];
  }
  const missing = spec.columns.filter((column) => !(row.columns ?? []).includes(column));
  if (missing.length > 0)
    return at(
      `the ${spec.label} ${table} lacks the column(s) ${missing.join(', ')} (DDL in docs/configuration.md)`,
    );
  if (row.usable === false)
    return at(`this role may not SELECT, INSERT and DELETE on the ${spec.label} ${table}`);
  return [];
}
