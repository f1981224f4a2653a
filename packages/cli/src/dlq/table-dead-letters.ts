import pg from 'pg';
import { pgConnectionOptions, type DatabaseConnection, type WalpurgeConfig } from '@walpurge/config';
import { createMetricsRegistry, errorMessage, isWalpurgeError, type Logger } from '@walpurge/core';
import {
  createInvalidator,
  deadLetterTableSql,
  deleteDeadLetters,
  insertDeadLetter,
  lastDeadLetterId,
  selectDeadLetters,
  type DeadLetter,
  type DeadLetterSelection,
  type DeadLetterSink,
  type StoredDeadLetter,
} from '@walpurge/invalidator';
import { messageKey, qualifiedTable } from '@walpurge/protocol';
import type { DeadLetterEntry } from './dead-letter-entry.js';

/** Rows handled per `handle()` call and per delete transaction of a redrive. */
const REDRIVE_BATCH = 100;

export function entryOfRow(row: StoredDeadLetter): DeadLetterEntry {
  return {
    id: row.id,
    deadLetteredAt: row.deadLetteredAt.toISOString(),
    cause: row.cause,
    target: row.target,
    table: row.table,
    rules: row.rules,
    lsn: row.lsn,
    errorCode: row.errorCode,
    error: row.errorMessage,
    key: messageKey(row.event),
    event: JSON.stringify(row.event),
  };
}

/** A refused-again event as stored anew (`id`), with the error of this attempt. */
function entryOfLetter(id: string, letter: DeadLetter): DeadLetterEntry {
  return {
    id,
    deadLetteredAt: new Date().toISOString(),
    cause: letter.cause,
    target: letter.target,
    table: qualifiedTable(letter.event),
    rules: [...letter.rules],
    lsn: letter.event.source.lsn,
    errorCode: isWalpurgeError(letter.error) ? letter.error.code : 'unknown',
    error: errorMessage(letter.error),
    key: messageKey(letter.event),
    event: JSON.stringify(letter.event),
  };
}

export async function connectDeadLetterTable(database: DatabaseConnection): Promise<pg.Client> {
  const client = new pg.Client({ ...pgConnectionOptions(database), application_name: 'walpurge-dlq' });
  await client.connect();
  return client;
}

async function tableExists(client: pg.Client, table: string): Promise<boolean> {
  const { rows } = await client.query<{ found: boolean }>('SELECT to_regclass($1) IS NOT NULL AS found', [
    deadLetterTableSql(table),
  ]);
  return rows[0]?.found === true;
}

/** The selected rows, oldest first; none when the table was never created (nothing was refused). */
export async function listTableDeadLetters(
  client: pg.Client,
  table: string,
  selection: DeadLetterSelection,
  limit: number,
): Promise<StoredDeadLetter[]> {
  if (!(await tableExists(client, table))) return [];
  return selectDeadLetters(client, table, selection, { limit });
}

/** Collects what the handle refuses again, to store it in the redrive's own transaction. */
class CollectingSink implements DeadLetterSink {
  letters: DeadLetter[] = [];
  send(letter: DeadLetter): Promise<void> {
    this.letters.push(letter);
    return Promise.resolve();
  }
}

export interface TableRedriveResult {
  redriven: number;
  /** Refused again: stored anew (new id, this attempt's error), their old rows deleted. */
  refusedAgain: DeadLetterEntry[];
}

/**
 * Inline redrive: the selected events go through the invalidator's `handle()` (the daemon's own
 * purge path, without a CDN lane or consumer), a batch at a time. A batch's rows are deleted only
 * after handle() resolved, in one transaction that also stores what was refused again, so an
 * interrupted redrive leaves every event either redriven or still in the table: running it again
 * resumes (purges are idempotent). Rows added after the redrive began are left for the next one.
 */
export async function redriveTableDeadLetters(options: {
  config: WalpurgeConfig;
  configFile?: string;
  client: pg.Client;
  table: string;
  selection: DeadLetterSelection;
  limit: number | undefined;
  logger: Logger;
  signal: AbortSignal;
  progress: (done: number, refusedAgain: number) => void;
}): Promise<TableRedriveResult> {
  const { client, table, selection, signal } = options;
  const result: TableRedriveResult = { redriven: 0, refusedAgain: [] };
  if (!(await tableExists(client, table))) return result;
  const upToId = await lastDeadLetterId(client, table);
  if (upToId === undefined) return result;
  const sink = new CollectingSink();
  const invalidator = createInvalidator({
    config: options.config,
    logger: options.logger,
    registry: createMetricsRegistry({ defaultMetrics: false }),
    consume: 'none',
    runCdnLane: false,
    deadLetters: sink,
    ...(options.configFile ? { configFile: options.configFile } : {}),
  });
  await invalidator.start(signal);
  try {
    let afterId: string | undefined;
    for (;;) {
      const handled = result.redriven + result.refusedAgain.length;
      const left = options.limit === undefined ? REDRIVE_BATCH : options.limit - handled;
      if (left <= 0) break;
      const rows = await selectDeadLetters(client, table, selection, {
        upToId,
        limit: Math.min(REDRIVE_BATCH, left),
        ...(afterId !== undefined ? { afterId } : {}),
      });
      if (rows.length === 0) break;
      sink.letters = [];
      const stored: DeadLetterEntry[] = [];
      await invalidator.handle(
        rows.map((row) => row.event),
        signal,
      );
      await client.query('BEGIN');
      try {
        await deleteDeadLetters(
          client,
          table,
          rows.map((row) => row.id),
        );
        for (const letter of sink.letters)
          stored.push(entryOfLetter(await insertDeadLetter(client, table, letter), letter));
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {});
        throw error;
      }
      result.refusedAgain.push(...stored);
      result.redriven += rows.length - stored.length;
      afterId = rows[rows.length - 1]?.id;
      options.progress(result.redriven + result.refusedAgain.length, result.refusedAgain.length);
    }
  } finally {
    await invalidator.stop();
  }
  return result;
}
