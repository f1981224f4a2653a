import pg from 'pg';
import { settlesWithin } from '@walpurge/core';
import type { TableName } from './table-names.js';
import { pgConnectionOptions, type DatabaseConnection } from '@walpurge/config';

/** Longest a catalog lookup may take before the session ends with its error (and reconnects). */
const CATALOG_QUERY_TIMEOUT_MS = 10_000;

/** What a relation message does not say: the partitioned table a partition belongs to, its primary key. */
export interface RelationFacts {
  /** Topmost partitioned ancestor when the relation is a partition (its changes are reported as this table's). */
  root: TableName | null;
  /** Primary-key columns (empty when none, or when the relation no longer exists). */
  primaryKey: string[];
  /**
   * Neither a partition nor a member of the publication by itself: PostgreSQL sent it because it was
   * a partition when changed, and it has been detached (or dropped) since. Its root is unknown now.
   */
  unresolved: boolean;
}

const DESCRIBE_TEMPLATE = `
WITH RECURSIVE chain(relid, depth) AS (
  SELECT $1::oid, 0
  UNION ALL
  SELECT i.inhparent, chain.depth + 1
    FROM chain JOIN pg_class child ON child.oid = chain.relid AND child.relispartition
    JOIN pg_inherits i ON i.inhrelid = chain.relid)
SELECT n.nspname AS schema, c.relname AS "table", chain.depth,
       EXISTS (SELECT 1 FROM pg_publication p
                WHERE p.pubname = $2
                  AND (p.puballtables
                       OR EXISTS (SELECT 1 FROM pg_publication_rel pr WHERE pr.prpubid = p.oid AND pr.prrelid = $1::oid)
                       %SCHEMA%)) AS member,
       coalesce((SELECT array_agg(a.attname::text ORDER BY k.ord)
                   FROM pg_index i
                   CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
                   JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                  WHERE i.indrelid = $1::oid AND i.indisprimary), '{}') AS primary_key
  FROM chain JOIN pg_class c ON c.oid = chain.relid JOIN pg_namespace n ON n.oid = c.relnamespace
 ORDER BY chain.depth DESC LIMIT 1`;

/** Schema membership (FOR TABLES IN SCHEMA) exists from PostgreSQL 15 on. */
function describeQuery(serverVersion: number): string {
  return DESCRIBE_TEMPLATE.replace(
    '%SCHEMA%',
    serverVersion >= 150000
      ? 'OR EXISTS (SELECT 1 FROM pg_publication_namespace pn WHERE pn.pnpubid = p.oid AND pn.pnnspid = c.relnamespace)'
      : '',
  );
}

/**
 * Looks relations up when their relation message arrives, on a connection of its own. A publication
 * that publishes partitions as themselves (publish_via_partition_root = false, and every publication
 * before PostgreSQL 13) sends a partition's changes under the partition's name; rules name the
 * partitioned table, so the listener reports them under the root. Asked per relation message, not
 * once at start: partitions created or attached while streaming arrive as new relation messages.
 * The answer is today's catalog: a change replayed from before a DETACH PARTITION is reported under
 * the detached table's own name.
 */
export class RelationCatalog {
  private client: pg.Client | undefined;
  private connecting: Promise<pg.Client> | undefined;
  private query = '';

  constructor(
    private readonly connection: DatabaseConnection,
    private readonly publication: string,
  ) {}

  async describe(oid: number): Promise<RelationFacts> {
    const client = await this.connect();
    const { rows } = await client.query<{
      schema: string;
      table: string;
      depth: number;
      member: boolean;
      primary_key: string[];
    }>(this.query, [String(oid), this.publication]);
    const row = rows[0];
    // Dropped since: its root is unknown.
    if (!row) return { root: null, primaryKey: [], unresolved: true };
    return {
      root: row.depth > 0 ? { schema: row.schema, table: row.table } : null,
      primaryKey: row.primary_key,
      unresolved: row.depth === 0 && !row.member,
    };
  }

  async close(): Promise<void> {
    const client = this.client ?? (await this.connecting?.catch(() => undefined));
    this.client = undefined;
    this.connecting = undefined;
    // end() waits for a query in flight, which on a dead connection ends only at query_timeout.
    await settlesWithin(client?.end().catch(() => {}) ?? Promise.resolve(), 1000);
  }

  private connect(): Promise<pg.Client> {
    if (this.client) return Promise.resolve(this.client);
    this.connecting ??= (async () => {
      const client = new pg.Client({
        ...pgConnectionOptions(this.connection),
        application_name: 'walpurge-listener-catalog',
        connectionTimeoutMillis: 10_000,
        // A hung lookup holds the replication socket paused: it must fail as itself (and the session
        // reconnect), not look like a dead replication connection, nor wait for TCP's 15 minutes.
        keepAlive: true,
        query_timeout: CATALOG_QUERY_TIMEOUT_MS,
      });
      client.on('error', () => {}); // reported through the failing query instead
      try {
        await client.connect();
        const { rows } = await client.query<{ version: string }>(
          "SELECT current_setting('server_version_num') AS version",
        );
        this.query = describeQuery(Number(rows[0]?.version ?? 0));
      } catch (error) {
        this.connecting = undefined;
        await client.end().catch(() => {});
        throw error;
      }
      this.client = client;
      return client;
    })();
    return this.connecting;
  }
}
