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

/** What accept-time checks need to know about one column (see row-check.ts). */
export interface ColumnInfo {
  /** Base type name (domains resolved), e.g. int4, varchar, uuid, jsonb. */
  baseType: string;
  /** pg_type.typcategory of the base type: A array, B boolean, D date/time, E enum, N numeric, S string, U other. */
  category: string;
  /** Declared length of varchar(n) / char(n); undefined when unbounded. */
  maxLength: number | undefined;
  notNull: boolean;
  /** GENERATED ALWAYS AS (…) STORED: PostgreSQL computes it, a write may not set it. */
  generated: boolean;
  /** GENERATED ALWAYS AS IDENTITY: PostgreSQL refuses an explicit value (an upsert must give one). */
  identityAlways: boolean;
  /** Labels of an enum type. */
  enumLabels: readonly string[] | undefined;
}

export interface TableShape {
  /** schema.table */
  table: string;
  primaryKey: string[];
  columns: ReadonlySet<string>;
  versionColumn: string;
  /** Per column; absent in shapes built by hand (then only names are checked). */
  columnInfo?: ReadonlyMap<string, ColumnInfo>;
}

/** Reads a table's primary key and checks its version column; a clear error when it cannot work. */
export async function describeWriteTable(
  client: ClientBase,
  table: string,
  versionColumn: string,
): Promise<TableShape> {
  const qualified = qualifyWriteTable(table);
  const { rows } = await client.query<{
    name: string;
    type: string;
    pk_position: number | null;
    base_type: string;
    category: string;
    max_length: number | null;
    not_null: boolean;
    generated: boolean;
    identity_always: boolean;
    enum_labels: string[] | null;
  }>(
    `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type,
            array_position(i.indkey::int2[], a.attnum) AS pk_position,
            bt.typname AS base_type, bt.typcategory AS category,
            CASE WHEN bt.typname IN ('varchar', 'bpchar')
                  AND COALESCE(NULLIF(t.typtypmod, -1), a.atttypmod) > 4
                 THEN COALESCE(NULLIF(t.typtypmod, -1), a.atttypmod) - 4 END AS max_length,
            a.attnotnull OR t.typnotnull AS not_null, a.attgenerated <> '' AS generated,
            a.attidentity = 'a' AS identity_always,
            (SELECT array_agg(e.enumlabel::text ORDER BY e.enumsortorder)
               FROM pg_enum e WHERE e.enumtypid = bt.oid) AS enum_labels
       FROM pg_attribute a
       JOIN pg_type t ON t.oid = a.atttypid
       JOIN pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
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
  const columnInfo = new Map<string, ColumnInfo>(
    rows.map((row) => [
      row.name,
      {
        baseType: row.base_type,
        category: row.category,
        maxLength: row.max_length ?? undefined,
        notNull: row.not_null,
        generated: row.generated,
        identityAlways: row.identity_always,
        enumLabels: row.enum_labels ?? undefined,
      },
    ]),
  );
  return {
    table: qualified,
    primaryKey,
    columns: new Set(rows.map((row) => row.name)),
    versionColumn,
    columnInfo,
  };
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
  const value = (column: string): string => {
    const ref = `${alias}.${sqlIdent(column)}`;
    // citext keys that compare equal ('Alice', 'alice') are one row: one tombstone, one row lock.
    // PostgreSQL's own lower() folds them, in the database's locale, as citext itself does.
    return shape.columnInfo?.get(column)?.baseType === 'citext' ? `lower(${ref}::text)` : ref;
  };
  return `jsonb_build_object(${shape.primaryKey.map((column) => `'${column.replace(/'/g, "''")}', ${value(column)}`).join(', ')})`;
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

/**
 * Serialises writes to the same rows: a transaction-scoped advisory lock per row key, taken in its
 * own statement BEFORE the upsert or delete. Under READ COMMITTED each statement reads a fresh
 * snapshot, so the statement that follows the lock sees every write to these rows that committed
 * before the lock was granted (a delete's tombstone, above all). Without it, an older upsert whose
 * snapshot predates a concurrent delete's commit re-inserts the deleted row.
 * Parameters as upsertStatement; keys are locked in a fixed order so two batches cannot deadlock.
 */
export function lockRowsStatement(shape: TableShape): string {
  return lockBatchRowsStatement([shape]);
}

/** The lock keys of one table's rows: parameters $rows (JSON array of rows) and $table. */
function rowLockKeys(shape: TableShape, rows: number, table: number): string {
  return `SELECT hashtextextended($${table} || ':' || ${rowKeyExpression(shape, 'r')}::text, 0) AS k
            FROM jsonb_populate_recordset(NULL::${sqlTable(shape.table)}, $${rows}::jsonb) AS r`;
}

/**
 * lockRowsStatement for the rows of several tables at once: every key of a batch is locked in ONE
 * statement, in one order (of the lock keys) across tables. Locking per table would let two flusher
 * replicas with [items#1, orders#5] and [orders#5, items#1] each hold one row and wait for the other
 * (a deadlock). Parameters: for table i (0-based), $(2i+1) = JSON array of its rows, $(2i+2) = its
 * qualified name, as upsertStatement's $1 and $2.
 */
export function lockBatchRowsStatement(shapes: readonly TableShape[]): string {
  const keys = shapes.map((shape, i) => rowLockKeys(shape, 2 * i + 1, 2 * i + 2)).join('\n          UNION ');
  return `SELECT count(pg_advisory_xact_lock(k))::int AS locked
  FROM (SELECT k FROM (${keys}) AS batch ORDER BY k) AS keys`;
}

/** Locks the rows of `params` (see lockRowsStatement); call inside the writing transaction. */
export async function lockRows(
  client: ClientBase,
  shape: TableShape,
  params: readonly [rowsJson: string, table: string],
): Promise<void> {
  await client.query(lockRowsStatement(shape), [...params]);
}
