import type pg from 'pg';
import {
  checkRowAgainstShape,
  deleteStatement,
  describeWriteTable,
  lockBatchRowsStatement,
  upsertStatement,
  type PendingWrite,
  type TableShape,
} from '@walpurge/write-behind';
import { isWalpurgeError } from '@walpurge/core';
import {
  PermanentRowError,
  describeSqlError,
  isForeignKeyViolation,
  isPermanentWriteError,
  writeErrorKind,
} from './sql-errors.js';
import type { FlushConnection } from './flush-connection.js';
import { STAMP_COMMIT_TIME } from './origin.js';

export type RowOutcome =
  | { ok: true }
  /** waitingForParent: refused by a foreign key (23503); worth trying again for a while. */
  | { ok: false; reason: string; waitingForParent?: boolean };

export interface BatchResult {
  outcomes: Map<string, RowOutcome>;
  /** Rows sent to PostgreSQL in statements that committed. */
  rowsWritten: number;
  /** Rows PostgreSQL changed (the rest were older than what it already had). */
  rowsApplied: number;
  /** Times a refused batch (or part of one) was halved to find the refused row. */
  splits: number;
}

/**
 * Writes a batch of pending rows in ONE transaction: per table and column set one
 * INSERT … ON CONFLICT DO UPDATE … WHERE version < EXCLUDED.version, one guarded DELETE for deletes.
 * If the database refuses the batch for good (see writeErrorKind), the batch is halved until the
 * refused row is alone: it fails with its reason, every other row is written (log2(n) extra
 * transactions per bad row rather than one per row). Transient errors are thrown: the caller retries,
 * and rows already committed by a half are rewritten as no-ops by the version guard.
 */
export class BatchWriter {
  private readonly shapes = new Map<string, TableShape>();

  constructor(
    private readonly connection: FlushConnection,
    private readonly versionColumn: string,
    private readonly tombstoneTable: string,
  ) {}

  async write(entries: readonly PendingWrite[]): Promise<BatchResult> {
    const result: BatchResult = { outcomes: new Map(), rowsWritten: 0, rowsApplied: 0, splits: 0 };
    const valid: PendingWrite[] = [];
    for (const entry of entries) {
      const problem = await this.validate(entry);
      if (problem) result.outcomes.set(entry.rowId, { ok: false, reason: problem });
      else valid.push(entry);
    }
    if (valid.length > 0) await this.writeOrSplit(valid, result);
    return result;
  }

  private async writeOrSplit(entries: readonly PendingWrite[], result: BatchResult): Promise<void> {
    try {
      result.rowsApplied += await this.transaction(entries);
      result.rowsWritten += entries.length;
      for (const entry of entries) result.outcomes.set(entry.rowId, { ok: true });
      return;
    } catch (error) {
      if (!isPermanentWriteError(error)) throw error;
      if (entries.length === 1) {
        result.outcomes.set(entries[0]!.rowId, {
          ok: false,
          reason: describeSqlError(error),
          ...(isForeignKeyViolation(error) ? { waitingForParent: true } : {}),
        });
        return;
      }
    }
    // Someone in the batch is bad: find out who, keeping everyone else's write.
    result.splits += 1;
    const half = Math.ceil(entries.length / 2);
    await this.writeOrSplit(entries.slice(0, half), result);
    await this.writeOrSplit(entries.slice(half), result);
  }

  /** A reason when the row can never be written (checked before touching the data). */
  private async validate(entry: PendingWrite): Promise<string | undefined> {
    const shape = await this.shapeOrReason(entry.table);
    if (typeof shape === 'string') return shape;
    const problem = checkRowAgainstShape(shape, entry.primaryKey, entry.row);
    if (!problem) return undefined;
    // The table may have changed since we looked (a column added): look once more before failing.
    this.shapes.delete(entry.table);
    const fresh = await this.shapeOrReason(entry.table);
    return typeof fresh === 'string' ? fresh : checkRowAgainstShape(fresh, entry.primaryKey, entry.row);
  }

  /**
   * The table's shape, or why it can never be written (a table dropped meanwhile: that fails this
   * row only, never the other tables' rows of a mixed batch). Retriable errors are thrown.
   */
  private async shapeOrReason(table: string): Promise<TableShape | string> {
    try {
      return await this.shape(table);
    } catch (error) {
      if (isWalpurgeError(error) && !error.retriable) return error.toUserMessage();
      throw error;
    }
  }

  private async shape(table: string): Promise<TableShape> {
    const known = this.shapes.get(table);
    if (known) return known;
    const client = await this.connection.get();
    const shape = await describeWriteTable(client, table, this.versionColumn);
    this.shapes.set(table, shape);
    return shape;
  }

  private async transaction(entries: readonly PendingWrite[]): Promise<number> {
    const client = await this.connection.get();
    try {
      await client.query('BEGIN');
      const groups = groupStatements(entries, this.shapes, this.versionColumn, this.tombstoneTable);
      // Every row of the batch locked first, in one statement and one global order (two replicas
      // with the same rows in other orders cannot deadlock), so each statement's snapshot sees a
      // delete-through that committed meanwhile (see lockBatchRowsStatement in @walpurge/write-behind).
      const lock = batchLock(groups, this.shapes);
      await client.query(lock.sql, lock.params);
      let applied = 0;
      for (const group of groups) {
        const params = [JSON.stringify(group.rows), group.table];
        const result = await client.query<{ deleted?: number }>(group.sql, params);
        applied += group.kind === 'delete' ? Number(result.rows[0]?.deleted ?? 0) : (result.rowCount ?? 0);
      }
      if (this.connection.originName && this.connection.stampsCommitTime)
        await client.query(STAMP_COMMIT_TIME);
      await client.query('COMMIT');
      return applied;
    } catch (error) {
      await rollback(client, this.connection, error);
      throw error;
    }
  }
}

async function rollback(client: pg.Client, connection: FlushConnection, error: unknown): Promise<void> {
  if (writeErrorKind(error) !== 'unavailable') {
    // The session is fine, only the transaction is aborted.
    await client.query('ROLLBACK').catch(() => connection.reset());
  } else {
    // Connection trouble: whatever state the session is in, do not reuse it. (If COMMIT was sent but
    // its reply lost, the retry rewrites the same versions: the guard makes that a no-op.)
    connection.reset();
  }
}

interface StatementGroup {
  kind: 'upsert' | 'delete';
  table: string;
  sql: string;
  rows: Array<Record<string, unknown>>;
}

/** One lock statement for all rows of all groups (see lockBatchRowsStatement). */
function batchLock(
  groups: readonly StatementGroup[],
  shapes: ReadonlyMap<string, TableShape>,
): { sql: string; params: string[] } {
  const rowsByTable = new Map<string, Array<Record<string, unknown>>>();
  for (const group of groups) {
    const rows = rowsByTable.get(group.table) ?? [];
    rows.push(...group.rows);
    rowsByTable.set(group.table, rows);
  }
  const tables = [...rowsByTable.keys()];
  const tableShapes = tables.map((table) => {
    const shape = shapes.get(table);
    if (!shape) throw new PermanentRowError(`no shape for ${table}`);
    return shape;
  });
  return {
    sql: lockBatchRowsStatement(tableShapes),
    params: tables.flatMap((table) => [JSON.stringify(rowsByTable.get(table)), table]),
  };
}

function groupStatements(
  entries: readonly PendingWrite[],
  shapes: ReadonlyMap<string, TableShape>,
  versionColumn: string,
  tombstoneTable: string,
): StatementGroup[] {
  const groups = new Map<string, StatementGroup>();
  for (const entry of entries) {
    const shape = shapes.get(entry.table);
    if (!shape) throw new PermanentRowError(`no shape for ${entry.table}`);
    const row = entry.op === 'upsert' ? { ...entry.row } : { ...entry.primaryKey };
    row[versionColumn] = entry.version;
    const columns = Object.keys(row).sort();
    const id = `${entry.op}\u0000${entry.table}\u0000${entry.op === 'upsert' ? columns.join(',') : ''}`;
    let group = groups.get(id);
    if (!group) {
      group = {
        kind: entry.op,
        table: entry.table,
        sql:
          entry.op === 'upsert'
            ? upsertStatement(shape, columns, tombstoneTable)
            : deleteStatement(shape, tombstoneTable),
        rows: [],
      };
      groups.set(id, group);
    }
    group.rows.push(row);
  }
  return [...groups.values()];
}
