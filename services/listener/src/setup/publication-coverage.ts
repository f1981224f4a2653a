import type { ClientBase } from 'pg';
import { quoteIdent, quoteTable, type TableName } from './table-names.js';

export interface TableCoverage extends TableName {
  /** An ordinary or partitioned table of that name exists. */
  exists: boolean;
  /** relkind 'p': its rows live in its partitions. */
  partitioned: boolean;
  /** Topmost partitioned ancestor when the table is itself a partition, else null. */
  partitionRoot: TableName | null;
  /**
   * Its changes reach the publication: it, one of its partition ancestors, its schema (PostgreSQL
   * 15+) or every table is a member. Partitions a partitioned table gains later are covered too; a
   * partitioned table whose partitions are members one by one is not (a new partition would be missed).
   */
  published: boolean;
  /** PostgreSQL 15+: the publication's row filter for it (or the ancestor it is published through). */
  rowFilter: string | null;
  /** PostgreSQL 15+: the publication's column list for it, null when every column is published. */
  columnList: string[] | null;
}

export interface PublicationFacts {
  exists: boolean;
  /** publish_via_partition_root (PostgreSQL 13+; false before). */
  viaRoot: boolean;
  /** One entry per table asked about, in the order asked. */
  tables: TableCoverage[];
}

/**
 * Whether the publication carries each table's changes, from pg_publication_rel rather than
 * pg_publication_tables: the latter lists a partitioned member as its leaves or as its root depending
 * on publish_via_partition_root, so a name check against it calls a member "missing".
 */
export async function publicationCoverage(
  client: ClientBase,
  publication: string,
  tables: readonly TableName[],
): Promise<PublicationFacts> {
  const version = await serverVersion(client);
  const { rows: pubs } = await client.query<{ oid: string; all: boolean; via_root: boolean }>(
    `SELECT oid::text AS oid, puballtables AS all, ${version >= 130000 ? 'pubviaroot' : 'false'} AS via_root
       FROM pg_publication WHERE pubname = $1`,
    [publication],
  );
  const pub = pubs[0];
  // Schema membership (FOR TABLES IN SCHEMA) exists from PostgreSQL 15 on.
  const inSchema =
    version >= 150000
      ? `OR EXISTS (SELECT 1 FROM pg_publication_namespace pn JOIN pg_class a ON a.relnamespace = pn.pnnspid
                     WHERE pn.pnpubid = $3::oid AND a.oid = ANY (up.chain))`
      : '';
  // Row filters and column lists (pg_publication_rel.prqual / prattrs) exist from PostgreSQL 15 on.
  const member = `FROM pg_publication_rel pr WHERE pr.prpubid = $3::oid AND pr.prrelid = ANY (up.chain)`;
  const filters =
    version >= 150000
      ? `(SELECT pg_get_expr(pr.prqual, pr.prrelid) ${member} AND pr.prqual IS NOT NULL LIMIT 1) AS row_filter,
         (SELECT array(SELECT a.attname::text FROM pg_attribute a
                        WHERE a.attrelid = pr.prrelid AND a.attnum = ANY (pr.prattrs::int2[]) ORDER BY a.attnum)
            ${member} AND pr.prattrs IS NOT NULL LIMIT 1) AS column_list`
      : 'NULL::text AS row_filter, NULL::text[] AS column_list';
  const { rows } = await client.query<{
    schema: string;
    table: string;
    exists: boolean;
    partitioned: boolean;
    root_schema: string | null;
    root_table: string | null;
    published: boolean;
    row_filter: string | null;
    column_list: string[] | null;
  }>(
    `SELECT w.schema, w.table, c.oid IS NOT NULL AS exists, coalesce(c.relkind = 'p', false) AS partitioned,
            rn.nspname AS root_schema, r.relname AS root_table,
            c.oid IS NOT NULL AND $3::oid IS NOT NULL AND (
              $4::boolean
              OR EXISTS (SELECT 1 FROM pg_publication_rel pr WHERE pr.prpubid = $3::oid AND pr.prrelid = ANY (up.chain))
              ${inSchema}) AS published,
            ${filters}
       FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS w(schema, "table", ord)
       LEFT JOIN pg_namespace n ON n.nspname = w.schema
       LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = w.table AND c.relkind IN ('r', 'p')
       LEFT JOIN LATERAL (
         WITH RECURSIVE chain(relid, depth) AS (
           SELECT c.oid, 0
           UNION ALL
           SELECT i.inhparent, chain.depth + 1
             FROM chain JOIN pg_class child ON child.oid = chain.relid AND child.relispartition
             JOIN pg_inherits i ON i.inhrelid = chain.relid)
         SELECT array_agg(relid ORDER BY depth) AS chain, max(depth) AS depth FROM chain) up ON c.oid IS NOT NULL
       LEFT JOIN pg_class r ON up.depth > 0 AND r.oid = up.chain[up.depth + 1]
       LEFT JOIN pg_namespace rn ON rn.oid = r.relnamespace
      ORDER BY w.ord`,
    [tables.map((t) => t.schema), tables.map((t) => t.table), pub?.oid ?? null, pub?.all ?? false],
  );
  return {
    exists: pub !== undefined,
    viaRoot: pub?.via_root ?? false,
    tables: rows.map((row) => ({
      schema: row.schema,
      table: row.table,
      exists: row.exists,
      partitioned: row.partitioned,
      partitionRoot:
        row.root_schema !== null && row.root_table !== null
          ? { schema: row.root_schema, table: row.root_table }
          : null,
      published: row.published,
      rowFilter: row.row_filter,
      columnList: row.column_list,
    })),
  };
}

/**
 * Why a table's changes reach walpurge only in part (a row filter or column list of an existing
 * publication, PostgreSQL 15+): entries derived from rows outside the filter, or from columns outside
 * the list, would never be purged. Undefined when the whole table is published.
 */
export function partialPublication(
  publication: string,
  table: TableCoverage,
): { message: string; fix: string } | undefined {
  const name = `${table.schema}.${table.table}`;
  const what =
    table.rowFilter !== null
      ? `only the rows of ${name} matching WHERE ${table.rowFilter}`
      : table.columnList !== null
        ? `only the columns ${table.columnList.join(', ')} of ${name}`
        : undefined;
  if (what === undefined) return undefined;
  return {
    message: `publication "${publication}" publishes ${what}: changes outside it never reach walpurge, so the cache entries they affect would never be purged`,
    fix: `ALTER PUBLICATION ${quoteIdent(publication)} SET TABLE ${quoteTable(table)} (without WHERE or a column list; it replaces the publication's table list, so name its other tables too), or give walpurge a publication of its own (database.publication)`,
  };
}

async function serverVersion(client: ClientBase): Promise<number> {
  const { rows } = await client.query<{ version: string }>(
    "SELECT current_setting('server_version_num') AS version",
  );
  return Number(rows[0]?.version ?? 0);
}
