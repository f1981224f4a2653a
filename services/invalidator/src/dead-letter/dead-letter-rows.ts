import type pg from 'pg';
import { z } from 'zod';
import { decodeChangeEventV1, type ChangeEvent } from '@walpurge/protocol';
import { deadLetterTableSql } from './dead-letter-table.js';

type Queryable = pg.ClientBase | pg.Pool;

/** Which dead letters an operator means (`walpurge dlq list|redrive` flags); absent = any. */
export interface DeadLetterSelection {
  rule?: string;
  /** `schema.table`. */
  table?: string;
  cause?: string;
  since?: Date;
  until?: Date;
}

/** A row of the dead-letter table, checked: the table is outside walpurge's control. */
const DeadLetterRow = z.object({
  id: z.string().regex(/^\d+$/),
  dead_lettered_at: z.date(),
  cause: z.string(),
  target: z.string(),
  error_code: z.string(),
  error_message: z.string(),
  table_name: z.string(),
  lsn: z.string(),
  commit_ts: z.date(),
  rules: z.array(z.string()),
  event: z.unknown(),
});

export interface StoredDeadLetter {
  id: string;
  deadLetteredAt: Date;
  cause: string;
  target: string;
  errorCode: string;
  errorMessage: string;
  table: string;
  lsn: string;
  commitTs: Date;
  rules: string[];
  event: ChangeEvent;
}

function toStored(raw: unknown): StoredDeadLetter {
  const row = DeadLetterRow.parse(raw);
  return {
    id: row.id,
    deadLetteredAt: row.dead_lettered_at,
    cause: row.cause,
    target: row.target,
    errorCode: row.error_code,
    errorMessage: row.error_message,
    table: row.table_name,
    lsn: row.lsn,
    commitTs: row.commit_ts,
    rules: row.rules,
    event: decodeChangeEventV1(JSON.stringify(row.event)),
  };
}

export interface RowRange {
  /** Only ids above this one (paging). */
  afterId?: string;
  /** Only ids up to this one (a redrive stops at what existed when it began). */
  upToId?: string;
  limit: number;
}

/** Selected rows in id order (the order they were refused). */
export async function selectDeadLetters(
  client: Queryable,
  table: string,
  selection: DeadLetterSelection,
  range: RowRange,
): Promise<StoredDeadLetter[]> {
  const where: string[] = [];
  const params: unknown[] = [];
  const add = (condition: (placeholder: string) => string, value: unknown): void => {
    params.push(value);
    where.push(condition(`$${params.length}`));
  };
  if (selection.rule !== undefined) add((p) => `${p} = ANY (rules)`, selection.rule);
  if (selection.table !== undefined) add((p) => `table_name = ${p}`, selection.table);
  if (selection.cause !== undefined) add((p) => `cause = ${p}`, selection.cause);
  if (selection.since !== undefined) add((p) => `dead_lettered_at >= ${p}`, selection.since);
  if (selection.until !== undefined) add((p) => `dead_lettered_at < ${p}`, selection.until);
  if (range.afterId !== undefined) add((p) => `id > ${p}::bigint`, range.afterId);
  if (range.upToId !== undefined) add((p) => `id <= ${p}::bigint`, range.upToId);
  params.push(range.limit);
  const { rows } = await client.query(
    `SELECT id::text, dead_lettered_at, cause, target, error_code, error_message, table_name,
            lsn::text, commit_ts, rules, event
       FROM ${deadLetterTableSql(table)}
      ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY id LIMIT $${params.length}`,
    params,
  );
  return rows.map(toStored);
}

/** The newest id now (undefined when empty): a redrive handles nothing added after it started. */
export async function lastDeadLetterId(client: Queryable, table: string): Promise<string | undefined> {
  const { rows } = await client.query<{ id: string | null }>(
    `SELECT max(id)::text AS id FROM ${deadLetterTableSql(table)}`,
  );
  return rows[0]?.id ?? undefined;
}

export async function deleteDeadLetters(
  client: Queryable,
  table: string,
  ids: readonly string[],
): Promise<number> {
  if (ids.length === 0) return 0;
  const result = await client.query(
    `DELETE FROM ${deadLetterTableSql(table)} WHERE id = ANY ($1::bigint[])`,
    [ids],
  );
  return result.rowCount ?? 0;
}
