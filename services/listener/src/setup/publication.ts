import type { ClientBase } from 'pg';
import { ErrorCode, WalpurgeError } from '@walpurge/core';
import { formatTableName, quoteIdent, quoteTable, type TableName } from './table-names.js';

export interface PublicationOptions {
  name: string;
  create: boolean;
  tables: readonly TableName[];
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
  if (!existing.puballtables) {
    const { rows: published } = await client.query<{ schemaname: string; tablename: string }>(
      'SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = $1',
      [options.name],
    );
    const have = new Set(published.map((row) => `${row.schemaname}.${row.tablename}`));
    const missing = options.tables.filter((table) => !have.has(formatTableName(table)));
    if (missing.length > 0) {
      throw new WalpurgeError(
        ErrorCode.PublicationMismatch,
        `publication "${options.name}" does not include ${missing.map(formatTableName).join(', ')}, which the rules need`,
        {
          hint: `walpurge never alters an existing publication: run ALTER PUBLICATION ${quoteIdent(options.name)} ADD TABLE ${missing.map(quoteTable).join(', ')}, or configure another database.publication`,
        },
      );
    }
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
