import type pg from 'pg';

export type ReplicaIdentity = 'default' | 'nothing' | 'full' | 'index';

export interface TableInfo {
  schema: string;
  table: string;
  columns: string[];
  replicaIdentity: ReplicaIdentity;
  /** Columns the WAL carries for old rows: the primary key (DEFAULT) or the identity index (INDEX). */
  identityColumns: string[];
  /** Whether the connected role may create a publication on it (owner or superuser). */
  ownedByCurrentRole: boolean;
}

/** 'users' → 'public.users'; 'app.users' stays. Rule tables are unquoted identifiers (schema-checked). */
export function qualifyTable(name: string): string {
  return name.includes('.') ? name : `public.${name}`;
}

const IDENTITY: Record<string, ReplicaIdentity> = { d: 'default', n: 'nothing', f: 'full', i: 'index' };

/** The catalog facts rules are checked against, for just the tables named. Keyed by 'schema.table'. */
export async function loadTableCatalog(
  client: pg.Client,
  tables: readonly string[],
): Promise<Map<string, TableInfo>> {
  const wanted = [...new Set(tables.map(qualifyTable))];
  if (wanted.length === 0) return new Map();
  const result = await client.query<{
    schema: string;
    table: string;
    relreplident: string;
    columns: string[];
    identity: string[];
    owned: boolean;
  }>(
    `SELECT n.nspname AS schema, c.relname AS table, c.relreplident::text AS relreplident,
            array(SELECT a.attname::text FROM pg_attribute a
                   WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum) AS columns,
            array(SELECT a.attname::text FROM pg_index i
                    JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
                   WHERE i.indrelid = c.oid
                     AND ((c.relreplident = 'd' AND i.indisprimary) OR (c.relreplident = 'i' AND i.indisreplident))
                   ORDER BY a.attnum) AS identity,
            pg_has_role(current_user, c.relowner, 'USAGE') AS owned
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p') AND (n.nspname || '.' || c.relname) = ANY ($1::text[])`,
    [wanted],
  );
  const catalog = new Map<string, TableInfo>();
  for (const row of result.rows) {
    catalog.set(`${row.schema}.${row.table}`, {
      schema: row.schema,
      table: row.table,
      columns: row.columns,
      replicaIdentity: IDENTITY[row.relreplident] ?? 'default',
      identityColumns: row.identity,
      ownedByCurrentRole: row.owned,
    });
  }
  return catalog;
}
