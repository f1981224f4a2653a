import type pg from 'pg';
import {
  checkRowAgainstShape,
  deleteStatement,
  describeWriteTable,
  lockRowsStatement,
  upsertStatement,
  type PendingWrite,
  type TableShape,
} from '@walpurge/client';
import { isWalpurgeError } from '@walpurge/core';
import { PermanentRowError, describeSqlError, isPermanentWriteError } from './sql-errors.js';
import type { FlushConnection } from './flush-connection.js';

export type RowOutcome = { ok: true } | { ok: false; reason: string };

export interface BatchResult {
  outcomes: Map<string, RowOutcome>;
  /** Rows sent to PostgreSQL in statements that committed. */
  rowsWritten: number;
  /** Rows PostgreSQL changed (the rest were older than what it already had). */
  rowsApplied: number;
}

/**
 * Writes a batch of pending rows in ONE transaction: per table and column set one
 * INSERT … ON CONFLICT DO UPDATE … WHERE version < EXCLUDED.version, one guarded DELETE for deletes.
 * If the database refuses the batch for a reason no retry fixes (a constraint, a bad column), each
 * row is tried alone so that one bad row fails alone. Transient errors are thrown (caller retries).
 */
export class BatchWriter {
  private readonly shapes = new Map<string, TableShape>();

  constructor(
    private readonly connection: FlushConnection,
    private readonly versionColumn: string,
    private readonly tombstoneTable: string,
  ) {}

  async write(entries: readonly PendingWrite[]): Promise<BatchResult> {
    const outcomes = new Map<string, RowOutcome>();
    const valid: PendingWrite[] = [];
    for (const entry of entries) {
      const problem = await this.validate(entry);
      if (problem) outcomes.set(entry.rowId, { ok: false, reason: problem });
      else valid.push(entry);
    }
    if (valid.length === 0) return { outcomes, rowsWritten: 0, rowsApplied: 0 };
    try {
      const applied = await this.transaction(valid);
      for (const entry of valid) outcomes.set(entry.rowId, { ok: true });
      return { outcomes, rowsWritten: valid.length, rowsApplied: applied };
    } catch (error) {
      if (!isPermanentWriteError(error)) throw error;
      if (valid.length === 1) {
        outcomes.set(valid[0]!.rowId, { ok: false, reason: describeSqlError(error) });
        return { outcomes, rowsWritten: 0, rowsApplied: 0 };
      }
    }
    // Someone in the batch is bad: find out who, keeping everyone else's write.
    let rowsWritten = 0;
    let rowsApplied = 0;
    for (const entry of valid) {
      try {
        rowsApplied += await this.transaction([entry]);
        rowsWritten += 1;
        outcomes.set(entry.rowId, { ok: true });
      } catch (error) {
        if (!isPermanentWriteError(error)) throw error;
        outcomes.set(entry.rowId, { ok: false, reason: describeSqlError(error) });
      }
    }
    return { outcomes, rowsWritten, rowsApplied };
  }

  /** A reason when the row can never be written (checked before touching the data). */
  private async validate(entry: PendingWrite): Promise<string | undefined> {
    let shape: TableShape;
    try {
      shape = await this.shape(entry.table);
    } catch (error) {
      if (isWalpurgeError(error) && !error.retriable) return error.toUserMessage();
      throw error;
    }
    const problem = checkRowAgainstShape(shape, entry.primaryKey, entry.row);
    if (!problem) return undefined;
    // The table may have changed since we looked (a column added): look once more before failing.
    this.shapes.delete(entry.table);
    return checkRowAgainstShape(await this.shape(entry.table), entry.primaryKey, entry.row);
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
      let applied = 0;
      for (const group of groupStatements(entries, this.shapes, this.versionColumn, this.tombstoneTable)) {
        const params = [JSON.stringify(group.rows), group.table];
        // Per-row lock first, so the statement's snapshot sees a delete-through that committed
        // meanwhile (see lockRowsStatement in @walpurge/client).
        await client.query(group.lockSql, params);
        const result = await client.query<{ deleted?: number }>(group.sql, params);
        applied += group.kind === 'delete' ? Number(result.rows[0]?.deleted ?? 0) : (result.rowCount ?? 0);
      }
      await client.query('COMMIT');
      return applied;
    } catch (error) {
      await rollback(client, this.connection, error);
      throw error;
    }
  }
}

async function rollback(client: pg.Client, connection: FlushConnection, error: unknown): Promise<void> {
  if (isPermanentWriteError(error)) {
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
  lockSql: string;
  rows: Array<Record<string, unknown>>;
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
        lockSql: lockRowsStatement(shape),
        rows: [],
      };
      groups.set(id, group);
    }
    group.rows.push(row);
  }
  return [...groups.values()];
}
