import type { Client } from 'pg';
import { ErrorCode, WalpurgeError } from '@walpurge/core';
import { formatTableName, type TableName } from './table-names.js';

export interface ServerFacts {
  database: string;
  serverVersion: number;
  user: string;
}

/** wal_level and the role's right to replicate: without them nothing else can work. */
export async function checkServer(client: Client): Promise<ServerFacts> {
  const { rows } = await client.query<{
    wal_level: string;
    database: string;
    version: number;
    user: string;
    rolsuper: boolean;
    rolreplication: boolean;
    rds_replication: boolean;
    in_recovery: boolean;
  }>(
    `SELECT current_setting('wal_level') AS wal_level, current_database() AS database,
            current_setting('server_version_num')::int AS version, current_user AS "user",
            r.rolsuper, r.rolreplication, pg_is_in_recovery() AS in_recovery,
            coalesce((SELECT pg_has_role(current_user, g.oid, 'member') FROM pg_roles g WHERE g.rolname = 'rds_replication'), false) AS rds_replication
       FROM pg_roles r WHERE r.rolname = current_user`,
  );
  const facts = rows[0];
  if (!facts)
    throw new WalpurgeError(ErrorCode.DatabaseSetup, 'could not read the current role from pg_roles');
  if (facts.in_recovery) throw standbyServer();
  if (facts.wal_level !== 'logical') {
    throw new WalpurgeError(
      ErrorCode.WalLevel,
      `wal_level is '${facts.wal_level}', logical replication needs 'logical'`,
      {
        hint: "run ALTER SYSTEM SET wal_level = 'logical' and restart PostgreSQL (managed services: set the rds.logical_replication / cloudsql.logical_decoding flag)",
      },
    );
  }
  if (facts.version < 100000) {
    throw new WalpurgeError(
      ErrorCode.DatabaseSetup,
      `PostgreSQL ${facts.version} is too old: pgoutput needs PostgreSQL 10 or newer`,
    );
  }
  if (!facts.rolsuper && !facts.rolreplication && !facts.rds_replication) {
    throw new WalpurgeError(ErrorCode.Privileges, `role "${facts.user}" may not use logical replication`, {
      hint: `run ALTER ROLE "${facts.user}" WITH REPLICATION (on RDS: GRANT rds_replication TO "${facts.user}")`,
    });
  }
  return { database: facts.database, serverVersion: facts.version, user: facts.user };
}

export interface TableFacts extends TableName {
  oid: number;
  /** relkind 'p': no rows of its own, its partitions hold them. */
  partitioned: boolean;
  /** pg_class.relreplident: d default, n nothing, f full, i index. */
  identity: string;
  primaryKey: string[];
  hasIdentityIndex: boolean;
}

/** Catalog facts of the given tables; `missing` lists names that are not tables. */
export async function describeTables(
  client: Client,
  tables: readonly TableName[],
): Promise<{ found: TableFacts[]; missing: TableName[] }> {
  const { rows } = await client.query<
    Omit<TableFacts, 'oid'> & { oid: string; primary_key: string[]; has_identity_index: boolean }
  >(
    // oid as text: ::int turns OIDs above 2^31 negative, and they would match no relation message.
    `SELECT c.oid::text AS oid, c.relkind = 'p' AS partitioned, n.nspname AS schema, c.relname AS "table", c.relreplident AS identity,
            coalesce((SELECT array_agg(a.attname::text ORDER BY k.ord)
                        FROM pg_index i
                        CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
                        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                       WHERE i.indrelid = c.oid AND i.indisprimary), '{}') AS primary_key,
            EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisreplident) AS has_identity_index
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p')
        AND (n.nspname, c.relname) IN (SELECT * FROM unnest($1::text[], $2::text[]))`,
    [tables.map((t) => t.schema), tables.map((t) => t.table)],
  );
  const found = rows.map((row) => ({
    oid: Number(row.oid),
    partitioned: row.partitioned,
    schema: row.schema,
    table: row.table,
    identity: row.identity,
    primaryKey: row.primary_key,
    hasIdentityIndex: row.has_identity_index,
  }));
  const names = new Set(found.map(formatTableName));
  return { found, missing: tables.filter((t) => !names.has(formatTableName(t))) };
}

/**
 * The tables whose replica identity matters: a partitioned table's own setting does nothing, each of
 * its partitions has its own (PostgreSQL refuses an UPDATE on a partition without one, and a
 * partition's identity decides which old values arrive).
 */
export async function withPartitionsExpanded(
  client: Client,
  tables: readonly TableFacts[],
): Promise<TableFacts[]> {
  const parents = tables.filter((table) => table.partitioned);
  if (parents.length === 0) return [...tables];
  const { rows } = await client.query<{ schema: string; table: string }>(
    `WITH RECURSIVE down(relid) AS (
       SELECT unnest($1::text[])::oid
       UNION ALL
       SELECT i.inhrelid FROM down JOIN pg_inherits i ON i.inhparent = down.relid
         JOIN pg_class c ON c.oid = i.inhrelid AND c.relispartition)
     SELECT DISTINCT n.nspname AS schema, c.relname AS "table"
       FROM down JOIN pg_class c ON c.oid = down.relid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind = 'r'`,
    [parents.map((table) => String(table.oid))],
  );
  const leaves = await describeTables(client, rows);
  return [...tables.filter((table) => !table.partitioned), ...leaves.found];
}

export function assertTablesExist(missing: readonly TableName[]): void {
  if (missing.length === 0) return;
  const list = missing.map(formatTableName).join(', ');
  throw new WalpurgeError(
    ErrorCode.SchemaMismatch,
    `table${missing.length > 1 ? 's' : ''} not found: ${list}`,
    {
      hint: "check the table names in rules / database.tables ('table' means public.table; write 'schema.table' otherwise)",
      details: { tables: missing.map(formatTableName) },
    },
  );
}

/**
 * Updates and deletes of a published table without a usable replica identity fail in PostgreSQL
 * itself ("cannot update table ... because it does not have a replica identity"), breaking the
 * application: refuse before publishing such a table, naming it and the fix.
 */
export function assertReplicaIdentity(tables: readonly TableFacts[]): void {
  const bad = tables.filter(
    (t) =>
      t.identity === 'n' ||
      (t.identity === 'd' && t.primaryKey.length === 0) ||
      (t.identity === 'i' && !t.hasIdentityIndex),
  );
  if (bad.length === 0) return;
  const first = bad[0] as TableFacts;
  const name = formatTableName(first);
  const why =
    first.identity === 'n'
      ? 'has REPLICA IDENTITY NOTHING'
      : first.identity === 'i'
        ? 'has REPLICA IDENTITY USING INDEX but the index is gone'
        : 'has no primary key';
  throw new WalpurgeError(
    ErrorCode.ReplicaIdentity,
    `table ${bad.map(formatTableName).join(', ')}: ${why}, so updates and deletes cannot be replicated`,
    {
      hint: `add a primary key, or run ALTER TABLE ${name} REPLICA IDENTITY FULL (old values of every column), or ALTER TABLE ${name} REPLICA IDENTITY USING INDEX <unique index on NOT NULL columns>`,
      details: { tables: bad.map(formatTableName) },
    },
  );
}

/**
 * walpurge writes on its database (publication, slot history) and streams from the primary; a
 * logical slot on a standby (PostgreSQL 16+) would also be lost on failover unless synchronized.
 * Retriable: a standby behind a cluster endpoint may be promoted in a moment.
 */
export function standbyServer(): WalpurgeError {
  return new WalpurgeError(
    ErrorCode.DatabaseSetup,
    'the server at database.url is a standby (in recovery): walpurge streams from the primary only',
    {
      retriable: true,
      hint: 'point database.url at the primary (with PostgreSQL 17 failover slots, database.failoverSlot keeps the slot on standbys for a promotion)',
    },
  );
}
