import type { ClientBase } from 'pg';
import { formatTableName, quoteIdent, quoteTable, type TableName } from './table-names.js';

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
  /**
   * PostgreSQL 15+: the row filter PostgreSQL applies to its changes: that of the relation they are
   * published as (a partition itself, or with publish_via_partition_root its topmost published
   * ancestor), null when none filters.
   */
  rowFilter: string | null;
  /** PostgreSQL 15+: the column list applied likewise, null when every column is published. */
  columnList: string[] | null;
  /** The relation whose row filter (else column list) that is: the table, a partition or an ancestor. */
  partialVia: TableName | null;
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
  // PostgreSQL applies those of the relation each change is published as (pgoutput's
  // publish_as_relid): every leaf partition as itself without publish_via_partition_root (a filter on
  // its partitioned table is then ignored), its topmost published ancestor with it. None applies
  // when that relation's schema is a member too (FOR TABLES IN SCHEMA) or the publication is FOR ALL
  // TABLES.
  const partial = (column: 'prqual' | 'prattrs', alias: string): string => `LEFT JOIN LATERAL (
         SELECT pr.prrelid, pr.${column} FROM pg_publication_rel pr JOIN pg_class pc ON pc.oid = pr.prrelid
          WHERE pr.prpubid = $3::oid AND pr.prrelid = ANY (pub_as.rels) AND pr.${column} IS NOT NULL AND NOT $4::boolean
            AND NOT EXISTS (SELECT 1 FROM pg_publication_namespace pn WHERE pn.pnpubid = $3::oid AND pn.pnnspid = pc.relnamespace)
          ORDER BY pr.prrelid LIMIT 1) ${alias} ON true`;
  const filters =
    version >= 150000
      ? {
          columns: `pg_get_expr(rf.prqual, rf.prrelid) AS row_filter,
            (SELECT array(SELECT a.attname::text FROM pg_attribute a
                           WHERE a.attrelid = cl.prrelid AND a.attnum = ANY (cl.prattrs::int2[]) ORDER BY a.attnum)
              WHERE cl.prrelid IS NOT NULL) AS column_list,
            vn.nspname AS via_schema, v.relname AS via_table`,
          joins: `LEFT JOIN LATERAL (
         SELECT array(
           SELECT DISTINCT CASE WHEN $5::boolean THEN coalesce(
                    (SELECT a.relid FROM pg_partition_ancestors(leaf.relid) WITH ORDINALITY a(relid, up)
                      WHERE EXISTS (SELECT 1 FROM pg_publication_rel pr WHERE pr.prpubid = $3::oid AND pr.prrelid = a.relid)
                         OR EXISTS (SELECT 1 FROM pg_publication_namespace pn JOIN pg_class ac ON ac.relnamespace = pn.pnnspid
                                     WHERE pn.pnpubid = $3::oid AND ac.oid = a.relid)
                      ORDER BY a.up DESC LIMIT 1),
                    leaf.relid) ELSE leaf.relid END
             FROM (SELECT t.relid FROM pg_partition_tree(c.oid) t WHERE t.isleaf
                   UNION SELECT c.oid WHERE c.relkind = 'r') leaf) AS rels) pub_as ON c.oid IS NOT NULL
       ${partial('prqual', 'rf')}
       ${partial('prattrs', 'cl')}
       LEFT JOIN pg_class v ON v.oid = coalesce(rf.prrelid, cl.prrelid)
       LEFT JOIN pg_namespace vn ON vn.oid = v.relnamespace`,
        }
      : {
          columns:
            'NULL::text AS row_filter, NULL::text[] AS column_list, NULL::text AS via_schema, NULL::text AS via_table',
          joins: '',
        };
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
    via_schema: string | null;
    via_table: string | null;
  }>(
    `SELECT w.schema, w.table, c.oid IS NOT NULL AS exists, coalesce(c.relkind = 'p', false) AS partitioned,
            rn.nspname AS root_schema, r.relname AS root_table,
            c.oid IS NOT NULL AND $3::oid IS NOT NULL AND (
              $4::boolean
              OR EXISTS (SELECT 1 FROM pg_publication_rel pr WHERE pr.prpubid = $3::oid AND pr.prrelid = ANY (up.chain))
              ${inSchema}) AS published,
            ${filters.columns}
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
       ${filters.joins}
      ORDER BY w.ord`,
    [
      tables.map((t) => t.schema),
      tables.map((t) => t.table),
      pub?.oid ?? null,
      pub?.all ?? false,
      // Only the 15+ query reads it: an unreferenced parameter has no type PostgreSQL could infer.
      ...(version >= 150000 ? [pub?.via_root ?? false] : []),
    ],
  );
  return {
    exists: pub !== undefined,
    viaRoot: pub?.via_root ?? false,
    tables: rows.map((row) => ({
      schema: row.schema,
      table: row.table,
      exists: row.exists,
      partitioned: row.partitioned,
      partitionRoot: nameOrNull(row.root_schema, row.root_table),
      published: row.published,
      rowFilter: row.row_filter,
      columnList: row.column_list,
      partialVia: nameOrNull(row.via_schema, row.via_table),
    })),
  };
}

/**
 * Why a table's changes reach walpurge only in part (PostgreSQL 15+), undefined when they do not:
 * a row filter hides every change to rows outside it, so the entries derived from those rows would
 * never be purged. A column list still lets every change through, only without the values of the
 * columns it drops: a problem only when walpurge reads one of those (`columnsRead`, from
 * columnsReadByTable), whose templates would then never render.
 */
export function partialPublication(
  publication: string,
  table: TableCoverage,
  columnsReadByTable: ReadonlyMap<string, readonly string[]>,
): { message: string; fix: string } | undefined {
  const via = table.partialVia ?? table;
  const name = formatTableName(table);
  const columnsRead = columnsReadByTable.get(name) ?? [];
  const viaName =
    formatTableName(via) === name
      ? name
      : table.partitioned
        ? `${formatTableName(via)} (a partition of ${name})`
        : `${formatTableName(via)} (which ${name} is published as)`;
  const listed = table.columnList;
  const dropped = listed === null ? [] : columnsRead.filter((column) => !listed.includes(column));
  const message =
    table.rowFilter !== null
      ? `publication "${publication}" publishes only the rows of ${viaName} matching WHERE ${table.rowFilter}: changes to other rows never reach walpurge, so the cache entries they affect would never be purged`
      : listed !== null && dropped.length > 0
        ? `publication "${publication}" publishes only the columns ${listed.join(', ')} of ${viaName}, but walpurge reads ${dropped.join(', ')}: changes arrive without those values, so the entries derived from them would never be purged`
        : undefined;
  if (message === undefined) return undefined;
  return {
    message,
    fix: `ALTER PUBLICATION ${quoteIdent(publication)} SET TABLE ${quoteTable(via)} (without WHERE${dropped.length > 0 ? ', or with a column list that keeps ' + dropped.join(', ') : ' or a column list'}; it replaces the publication's table list, so name its other tables too), or give walpurge a publication of its own (database.publication)`,
  };
}

/** A relation the query found through an outer join (both null when there is none). */
function nameOrNull(schema: string | null, table: string | null): TableName | null {
  return schema !== null && table !== null ? { schema, table } : null;
}

async function serverVersion(client: ClientBase): Promise<number> {
  const { rows } = await client.query<{ version: string }>(
    "SELECT current_setting('server_version_num') AS version",
  );
  return Number(rows[0]?.version ?? 0);
}
