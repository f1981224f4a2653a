import type pg from 'pg';
import type { Row } from '@walpurge/protocol';

export type RowNow = { gone: true } | { gone: false; version: string | null };

const quote = (identifier: string): string => `"${identifier.replace(/"/g, '""')}"`;

/** SQL parameters for a primary key's values as the listener encoded them (JSON values). */
const parameter = (value: unknown): unknown =>
  value !== null && typeof value === 'object' ? JSON.stringify(value) : value;

/**
 * The confirm step's read: the row's version column, as PostgreSQL's text, by primary key (the
 * event's `key`). Identifiers quoted, values parameterised. The pool's sessions use DateStyle ISO
 * and TimeZone UTC (see createRowPool), so timestamps read as '2026-12-06 02:50:00.123456+00'.
 */
export async function readRowVersion(
  pool: pg.Pool,
  table: { schema: string; table: string },
  key: Row,
  versionColumn: string,
): Promise<RowNow> {
  const columns = Object.keys(key);
  const where = columns.map((column, i) => `${quote(column)} = $${i + 1}`).join(' AND ');
  const sql = `SELECT ${quote(versionColumn)}::text AS version FROM ${quote(table.schema)}.${quote(table.table)} WHERE ${where}`;
  const { rows } = await pool.query<{ version: string | null }>(
    sql,
    columns.map((column) => parameter(key[column])),
  );
  const row = rows[0];
  return row ? { gone: false, version: row.version } : { gone: true };
}
