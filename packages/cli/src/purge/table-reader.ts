import type pg from 'pg';
import { ErrorCode, WalpurgeError, sqlState } from '@walpurge/core';
import { TypeConverters, loadTypes } from '@walpurge/listener';
import { UsageError } from '../cli-io.js';

/**
 * How rows are paged: keyset over the primary key (else the replica identity index, unique and
 * NOT NULL too), so each page is an index range scan and the last key is a resumable position.
 * A table with neither is paged by `ctid` (a TID range scan): ctid is the row's physical place,
 * so a row updated during the scan can move behind the cursor — its update reaches walpurge
 * through replication anyway — and a table rewrite (VACUUM FULL, CLUSTER) renumbers every row,
 * which is why a ctid checkpoint records the table's file node and resuming refuses if it changed.
 * A partitioned table without a primary key is paged by (tableoid, ctid), whole scans per page.
 */
export interface KeySet {
  kind: 'primary key' | 'replica identity index' | 'ctid';
  /** SQL expressions of the key, in order (quoted columns, or ctid / tableoid). */
  expressions: string[];
  /** Type names to cast the text of a resumed key back. */
  types: string[];
  /** Columns of the key as the rows carry them (for the change event's `key`); empty for ctid. */
  columns: string[];
}

export interface TableFacts {
  schema: string;
  table: string;
  partitioned: boolean;
  keySet: KeySet;
  /** pg_relation_filenode; changes when the table is rewritten (ctid positions then mean nothing). */
  fileNode: string | null;
}

export interface RowPage {
  /** Rows as the listener would decode them (same converters, same session settings). */
  rows: Array<Record<string, unknown>>;
  /** Key of each row as text (its output form), the last one is the resume position. */
  keys: string[][];
}

/**
 * node-pg's extended-protocol switch (`queryMode`, missing from its type definitions): a single
 * statement per query, whatever --where contains.
 */
function extended<T extends object>(query: T): T {
  return Object.assign(query, { queryMode: 'extended' });
}

export const quoteIdent = (name: string): string => `"${name.replaceAll('"', '""')}"`;

export function quotedTable(facts: Pick<TableFacts, 'schema' | 'table'>): string {
  return `${quoteIdent(facts.schema)}.${quoteIdent(facts.table)}`;
}

export async function describeTable(client: pg.Client, schema: string, table: string): Promise<TableFacts> {
  const { rows } = await client.query<{
    relkind: string;
    filenode: string | null;
    primary: boolean | null;
    columns: string[] | null;
    types: string[] | null;
  }>(
    `SELECT c.relkind::text AS relkind, pg_relation_filenode(c.oid)::text AS filenode, i.indisprimary AS primary,
            array(SELECT a.attname::text FROM unnest(i.indkey) WITH ORDINALITY k(attnum, n)
                    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum ORDER BY k.n) AS columns,
            array(SELECT format_type(a.atttypid, a.atttypmod) FROM unnest(i.indkey) WITH ORDINALITY k(attnum, n)
                    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum ORDER BY k.n) AS types
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       LEFT JOIN pg_index i ON i.indrelid = c.oid AND (i.indisprimary OR i.indisreplident)
      WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')
      ORDER BY i.indisprimary DESC NULLS LAST
      LIMIT 1`,
    [schema, table],
  );
  const row = rows[0];
  if (!row) {
    throw new WalpurgeError(
      ErrorCode.ConfigInvalid,
      `table ${schema}.${table} does not exist in the database`,
      {
        hint: 'a rule names it: check the rule, --table (schema.table; a bare name means public) and database.url',
      },
    );
  }
  const partitioned = row.relkind === 'p';
  let keySet: KeySet;
  if (row.primary !== null && row.columns && row.types && row.columns.length > 0) {
    keySet = {
      kind: row.primary ? 'primary key' : 'replica identity index',
      expressions: row.columns.map(quoteIdent),
      types: row.types,
      columns: row.columns,
    };
  } else if (partitioned) {
    keySet = { kind: 'ctid', expressions: ['tableoid', 'ctid'], types: ['oid', 'tid'], columns: [] };
  } else {
    keySet = { kind: 'ctid', expressions: ['ctid'], types: ['tid'], columns: [] };
  }
  return { schema, table, partitioned, keySet, fileNode: row.filenode };
}

/** The condition in parentheses; the newline ends a trailing `-- comment` before the `)`. */
function wrapWhere(where: string): string {
  return `(${where}\n)`;
}

/** A --where PostgreSQL refused, with its message and a caret under the place it points at. */
function badWhere(error: unknown, where: string, offset: number): UsageError {
  const message = error instanceof Error ? error.message : String(error);
  const position = Number((error as { position?: string }).position);
  let located = `--where is not valid SQL for this table: ${message}`;
  const at = position - 1 - offset;
  if (Number.isInteger(at) && at >= 0 && at <= where.length) {
    located += `\n  ${where}\n  ${' '.repeat(at)}^`;
  }
  return new UsageError(located, 'purge');
}

/** Parses and plans --where against the table (nothing runs), so a typo fails before any purge. */
export async function checkWhere(client: pg.Client, facts: TableFacts, where: string): Promise<void> {
  const head = `EXPLAIN SELECT 1 FROM ${quotedTable(facts)} AS t WHERE (`;
  try {
    // Extended protocol: one statement only, so `--where "x); DROP …"` cannot run a second one.
    await client.query(extended({ text: `${head}${wrapWhere(where).slice(1)}` }));
  } catch (error) {
    if (sqlState(error) === undefined) throw error;
    throw badWhere(error, where, head.length);
  }
}

/** Rows to go, for the progress bar: an exact count when it takes under 5 s, else the planner's estimate. */
export async function countRows(
  client: pg.Client,
  facts: TableFacts,
  where: string | undefined,
): Promise<{ rows: number; exact: boolean }> {
  const from = `FROM ${quotedTable(facts)} AS t${where ? ` WHERE ${wrapWhere(where)}` : ''}`;
  try {
    await client.query('BEGIN');
    await client.query("SET LOCAL statement_timeout = '5s'");
    const { rows } = await client.query<{ n: string }>(
      extended({ text: `SELECT count(*)::text AS n ${from}` }),
    );
    await client.query('COMMIT');
    return { rows: Number(rows[0]?.n ?? 0), exact: true };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    if (sqlState(error) !== '57014') throw error;
  }
  const { rows } = await client.query<{ 'QUERY PLAN': Array<{ Plan: { 'Plan Rows': number } }> }>(
    extended({ text: `EXPLAIN (FORMAT JSON) SELECT 1 ${from}` }),
  );
  return { rows: rows[0]?.['QUERY PLAN'][0]?.Plan['Plan Rows'] ?? 0, exact: false };
}

/**
 * Reads the table a page at a time in key order, after `after` (a key as text). Values are
 * fetched as text and converted by the listener's own converters, so `{col}` renders exactly as it
 * does for a replicated change.
 */
export class TableReader {
  private converters: TypeConverters | undefined;

  constructor(
    private readonly client: pg.Client,
    private readonly facts: TableFacts,
    private readonly where: string | undefined,
  ) {}

  async page(after: readonly string[] | undefined, limit: number): Promise<RowPage> {
    this.converters ??= new TypeConverters(await loadTypes(this.client));
    const { keySet } = this.facts;
    const width = keySet.expressions.length;
    const keyList = keySet.expressions.map((e) => `t.${e}`);
    const conditions: string[] = [];
    if (this.where) conditions.push(wrapWhere(this.where));
    if (after) {
      const params = keySet.types.map((type, i) => `$${i + 1}::${type}`);
      // One column alone, so a ctid key gets PostgreSQL's TID range scan.
      conditions.push(
        width === 1
          ? `${keyList[0] ?? ''} > ${params[0] ?? ''}`
          : `(${keyList.join(', ')}) > (${params.join(', ')})`,
      );
    }
    const only = this.facts.partitioned ? '' : 'ONLY ';
    const text = `SELECT ${keyList.map((e) => `${e}::text`).join(', ')}, t.*
        FROM ${only}${quotedTable(this.facts)} AS t
       ${conditions.length ? `WHERE ${conditions.join(' AND ')}` : ''}
       ORDER BY ${keyList.join(', ')}
       LIMIT ${limit}`;
    const result = await this.client.query<unknown[]>(
      extended({
        text,
        values: after ? [...after] : [],
        rowMode: 'array' as const,
        // Every value as PostgreSQL's text: the converters below give it the listener's shape.
        types: { getTypeParser: () => (value: string) => value },
      }),
    );
    const converters = this.converters;
    const fields = result.fields.slice(width).map((field) => ({
      name: field.name,
      convert: converters.converterFor(field.dataTypeID),
    }));
    const rows: Array<Record<string, unknown>> = [];
    const keys: string[][] = [];
    for (const values of result.rows) {
      keys.push(values.slice(0, width) as string[]);
      const row: Record<string, unknown> = {};
      fields.forEach((field, i) => {
        const raw = values[width + i];
        row[field.name] = raw === null || raw === undefined ? null : field.convert(raw as string);
      });
      rows.push(row);
    }
    return { rows, keys };
  }
}
