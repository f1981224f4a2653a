import type { ClientBase } from 'pg';
import { ErrorCode, WalpurgeError } from '@walpurge/core';
import { qualifyWriteTable } from './layout.js';

/**
 * Version-guarded SQL shared by write-through (client) and write-behind (flusher): an older write
 * never overwrites a newer one, and a late older write never resurrects a deleted row (tombstones).
 */

export function sqlIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

export function sqlTable(table: string): string {
  const qualified = qualifyWriteTable(table);
  const dot = qualified.indexOf('.');
  return `${sqlIdent(qualified.slice(0, dot))}.${sqlIdent(qualified.slice(dot + 1))}`;
}

export interface TableShape {
  /** schema.table */
  table: string;
  primaryKey: string[];
  columns: ReadonlySet<string>;
  versionColumn: string;
}

/** Reads a table's primary key and checks its version column; a clear error when it cannot work. */
export async function describeWriteTable(
  client: ClientBase,
  table: string,
  versionColumn: string,
): Promise<TableShape> {
  const qualified = qualifyWriteTable(table);
  const { rows } = await client.query<{ name: string; type: string; pk_position: number | null }>(
    `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type,
            array_position(i.indkey::int2[], a.attnum) AS pk_position
       FROM pg_attribute a
       LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary
      WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped`,
    [sqlTable(qualified)],
  );
  if (rows.length === 0) {
    throw new WalpurgeError(ErrorCode.SchemaMismatch, `write-behind table ${qualified} does not exist`, {
      hint: 'create the table, or fix the table name given to writeBehind / flusher.tables',
    });
  }
  const primaryKey = rows
    .filter((row) => row.pk_position !== null)
    .sort((a, b) => (a.pk_position ?? 0) - (b.pk_position ?? 0))
    .map((row) => row.name);
  if (primaryKey.length === 0) {
    throw new WalpurgeError(ErrorCode.SchemaMismatch, `write-behind table ${qualified} has no primary key`, {
      hint: `ALTER TABLE ${sqlTable(qualified)} ADD PRIMARY KEY (…): rows are upserted by primary key`,
    });
  }
  const version = rows.find((row) => row.name === versionColumn);
  if (!version) {
    throw new WalpurgeError(
      ErrorCode.SchemaMismatch,
      `write-behind table ${qualified} has no version column ${versionColumn}`,
      {
        hint: `ALTER TABLE ${sqlTable(qualified)} ADD COLUMN ${sqlIdent(versionColumn)} bigint NOT NULL DEFAULT 0 (or set flusher.versionColumn)`,
      },
    );
  }
  if (version.type !== 'bigint') {
    throw new WalpurgeError(
      ErrorCode.SchemaMismatch,
      `version column ${qualified}.${versionColumn} is ${version.type}, but must be bigint`,
      { hint: `ALTER TABLE ${sqlTable(qualified)} ALTER COLUMN ${sqlIdent(versionColumn)} TYPE bigint` },
    );
  }
  return { table: qualified, primaryKey, columns: new Set(rows.map((row) => row.name)), versionColumn };
}

export function tombstoneTableDdl(tombstoneTable: string): string[] {
  const name = sqlTable(tombstoneTable);
  return [
    `CREATE TABLE IF NOT EXISTS ${name} (
       table_name text NOT NULL,
       row_key jsonb NOT NULL,
       version bigint NOT NULL,
       deleted_at timestamptz NOT NULL DEFAULT now(),
       PRIMARY KEY (table_name, row_key))`,
  ];
}

function rowKeyExpression(shape: TableShape, alias: string): string {
  return `jsonb_build_object(${shape.primaryKey.map((column) => `'${column.replace(/'/g, "''")}', ${alias}.${sqlIdent(column)}`).join(', ')})`;
}

/**
 * One statement upserting many rows with the same column set. Parameters: $1 = JSON array of rows
 * (version column included), $2 = qualified table name (tombstone lookup). jsonb_populate_recordset
 * converts each JSON value to the column's type, like an INSERT of text literals would. Two rows that
 * are one database row once converted (`{"id":1}` and `{"id":"1"}`) are reduced to the newer one:
 * ON CONFLICT may not touch a row twice (SQLSTATE 21000), and the older value would lose anyway.
 */
export function upsertStatement(
  shape: TableShape,
  columns: readonly string[],
  tombstoneTable: string,
): string {
  const all = [...new Set([...columns, shape.versionColumn])];
  const target = sqlTable(shape.table);
  const version = sqlIdent(shape.versionColumn);
  const updatable = all.filter((column) => !shape.primaryKey.includes(column));
  const keyColumns = shape.primaryKey.map((column) => `r.${sqlIdent(column)}`).join(', ');
  return `INSERT INTO ${target} AS target (${all.map(sqlIdent).join(', ')})
SELECT DISTINCT ON (${keyColumns}) ${all.map((column) => `r.${sqlIdent(column)}`).join(', ')}
  FROM jsonb_populate_recordset(NULL::${target}, $1::jsonb) AS r
 WHERE NOT EXISTS (SELECT 1 FROM ${sqlTable(tombstoneTable)} ts
                    WHERE ts.table_name = $2 AND ts.row_key = ${rowKeyExpression(shape, 'r')} AND ts.version >= r.${version})
 ORDER BY ${keyColumns}, r.${version} DESC
ON CONFLICT (${shape.primaryKey.map(sqlIdent).join(', ')}) DO UPDATE
   SET ${updatable.map((column) => `${sqlIdent(column)} = EXCLUDED.${sqlIdent(column)}`).join(', ')}
 WHERE target.${version} IS NULL OR target.${version} < EXCLUDED.${version}`;
}

/**
 * Deletes rows older than the delete's version and records tombstones. Parameters as upsertStatement
 * (rows hold only primary key + version). Returns one row: { deleted }.
 */
export function deleteStatement(shape: TableShape, tombstoneTable: string): string {
  const target = sqlTable(shape.table);
  const version = sqlIdent(shape.versionColumn);
  const tombstones = sqlTable(tombstoneTable);
  const matches = shape.primaryKey
    .map((column) => `target.${sqlIdent(column)} = r.${sqlIdent(column)}`)
    .join(' AND ');
  const keyColumns = shape.primaryKey.map((column) => `p.${sqlIdent(column)}`).join(', ');
  return `WITH r AS (SELECT DISTINCT ON (${keyColumns}) * FROM jsonb_populate_recordset(NULL::${target}, $1::jsonb) AS p
             ORDER BY ${keyColumns}, p.${version} DESC),
gone AS (DELETE FROM ${target} AS target USING r
          WHERE ${matches} AND (target.${version} IS NULL OR target.${version} < r.${version})
         RETURNING 1),
tomb AS (INSERT INTO ${tombstones} AS ts (table_name, row_key, version, deleted_at)
         SELECT $2, ${rowKeyExpression(shape, 'r')}, r.${version}, now() FROM r
         ON CONFLICT (table_name, row_key) DO UPDATE
            SET version = GREATEST(ts.version, EXCLUDED.version), deleted_at = now()
         RETURNING 1)
SELECT (SELECT count(*) FROM gone)::int AS deleted, (SELECT count(*) FROM tomb)::int AS tombstones`;
}

/** A problem with a row that no retry can fix (wrong key columns, unknown column). */
export function checkRowAgainstShape(
  shape: TableShape,
  primaryKey: Record<string, unknown>,
  row?: Record<string, unknown>,
): string | undefined {
  const keyColumns = Object.keys(primaryKey).sort();
  const expected = [...shape.primaryKey].sort();
  if (keyColumns.join(',') !== expected.join(',')) {
    return `key columns (${keyColumns.join(', ')}) are not the primary key of ${shape.table} (${shape.primaryKey.join(', ')}): pass primaryKey`;
  }
  for (const column of Object.keys(row ?? {})) {
    if (!shape.columns.has(column)) return `column ${column} does not exist in ${shape.table}`;
  }
  return undefined;
}
