import type { ClientBase } from 'pg';
import { ErrorCode, WalpurgeError } from '@walpurge/core';
import { partialPublication, publicationCoverage } from './publication-coverage.js';
import { formatTableName, quoteIdent, quoteTable, type TableName } from './table-names.js';

export interface PublicationOptions {
  name: string;
  create: boolean;
  tables: readonly TableName[];
  /** The columns walpurge reads (rules, flusher version column), by `schema.table` (columnsReadByTable): a column list must keep them. */
  columnsRead: ReadonlyMap<string, readonly string[]>;
  /** Problems that do not stop walpurge but that an operator should fix. */
  warn(message: string, hint: string): void;
}

/**
 * Creates the publication when missing. An existing publication is never altered: if it lacks a
 * table the rules need, that is an error telling the operator the exact statement to run.
 * Returns true when it created the publication.
 */
export async function ensurePublication(client: ClientBase, options: PublicationOptions): Promise<boolean> {
  const { rows } = await client.query<{
    puballtables: boolean;
    pubupdate: boolean;
    pubdelete: boolean;
    pubinsert: boolean;
    pubtruncate: boolean;
  }>(
    'SELECT puballtables, pubinsert, pubupdate, pubdelete, pubtruncate FROM pg_publication WHERE pubname = $1',
    [options.name],
  );
  const existing = rows[0];
  if (!existing) {
    if (options.tables.length === 0) {
      throw new WalpurgeError(
        ErrorCode.ConfigInvalid,
        `nothing to publish: no rules and no database.tables, and publication "${options.name}" does not exist`,
        {
          hint: 'add rules (their tables are published) or list tables under database.tables',
        },
      );
    }
    // publish_via_partition_root stays false (the default) on purpose: with it, PostgreSQL does not
    // publish a TRUNCATE of a single partition at all. Partitions' changes arrive under their own
    // names and the listener reports them under the partitioned table (see RelationCatalog).
    const statement = `CREATE PUBLICATION ${quoteIdent(options.name)} FOR TABLE ${options.tables.map(quoteTable).join(', ')}`;
    if (!options.create) {
      throw new WalpurgeError(ErrorCode.DatabaseSetup, `publication "${options.name}" does not exist`, {
        hint: `create it (${statement}) or set database.createPublication: true`,
      });
    }
    try {
      await client.query(statement);
    } catch (error) {
      // Another instance created it at the same moment: fine, check it like an existing one.
      if ((error as { code?: string }).code !== '42710') throw error;
    }
    return true;
  }
  const coverage = await publicationCoverage(client, options.name, options.tables);
  const missing = coverage.tables.filter((table) => !table.published);
  if (missing.length > 0) {
    throw new WalpurgeError(
      ErrorCode.PublicationMismatch,
      `publication "${options.name}" does not include ${missing.map(formatTableName).join(', ')}, which the rules need`,
      {
        hint: `walpurge never alters an existing publication: run ALTER PUBLICATION ${quoteIdent(options.name)} ADD TABLE ${missing.map(quoteTable).join(', ')}, or configure another database.publication`,
      },
    );
  }
  const partial = coverage.tables
    .map((table) => partialPublication(options.name, table, options.columnsRead))
    .find((problem) => problem !== undefined);
  if (partial) throw new WalpurgeError(ErrorCode.PublicationMismatch, partial.message, { hint: partial.fix });
  if (coverage.viaRoot && coverage.tables.some((table) => table.partitioned || table.partitionRoot)) {
    options.warn(
      `publication "${options.name}" has publish_via_partition_root = true: PostgreSQL does not publish a TRUNCATE of a single partition, so caches derived from a truncated partition will not be purged`,
      `run ALTER PUBLICATION ${quoteIdent(options.name)} SET (publish_via_partition_root = false) (walpurge reports a partition's changes under its partitioned table either way)`,
    );
  }
  if (!existing.pubinsert || !existing.pubupdate || !existing.pubdelete) {
    throw new WalpurgeError(
      ErrorCode.PublicationMismatch,
      `publication "${options.name}" does not publish every insert, update and delete`,
      {
        hint: `run ALTER PUBLICATION ${quoteIdent(options.name)} SET (publish = 'insert, update, delete, truncate')`,
      },
    );
  }
  // Without truncates the caches of a truncated table stay stale; some operators exclude them on
  // purpose (huge tables), so this is a warning, not a refusal.
  if (!existing.pubtruncate) {
    options.warn(
      `publication "${options.name}" does not publish TRUNCATE: caches derived from a truncated table will not be purged`,
      `run ALTER PUBLICATION ${quoteIdent(options.name)} SET (publish = 'insert, update, delete, truncate')`,
    );
  }
  return false;
}

/** OIDs of every table the publication covers (it may cover more than the rules name). */
export async function publishedTableNames(client: ClientBase, publication: string): Promise<TableName[]> {
  const { rows } = await client.query<{ schemaname: string; tablename: string }>(
    'SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = $1',
    [publication],
  );
  return rows.map((row) => ({ schema: row.schemaname, table: row.tablename }));
}
