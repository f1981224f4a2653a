import type pg from 'pg';
import type { Rule, WalpurgeConfig } from '@walpurge/config';
import { createMetricsRegistry, type Logger } from '@walpurge/core';
import { createInvalidatorMetrics, createPurgers, PurgeExecutor, type Purger } from '@walpurge/invalidator';
import { REPLICATION_SESSION_OPTIONS } from '@walpurge/listener';
import type { ChangeEvent } from '@walpurge/protocol';
import {
  cdnKinds,
  compileRules,
  redisKinds,
  TargetAccumulator,
  type CompiledRules,
  type UnknownReason,
} from '@walpurge/rules';
import { UsageError } from '../cli-io.js';
import { connectDatabase } from '../live/connect-database.js';
import { qualifyTable } from '../live/table-catalog.js';
import { readCheckpoint, removeCheckpoint, writeCheckpoint, type Checkpoint } from './checkpoint.js';
import { openCacheRedis } from './cache-redis.js';
import type { Unpurgeable } from './key-space.js';
import { unsupported } from './target-support.js';
import { checkWhere, countRows, describeTable, TableReader, type KeySet } from './table-reader.js';

export interface PurgeTableOptions {
  config: WalpurgeConfig;
  logger: Logger;
  /** `schema.table` or `table` (public); must be watched by a rule. */
  table: string;
  /** SQL condition on the table's columns (alias `t`). */
  where?: string;
  batchSize: number;
  /** Plan only: count and sample the entries; nothing purged, no checkpoint written. */
  dryRun?: boolean;
  /** Written after every purged batch; removed when the table is done. */
  checkpointFile: string;
  /** Start after the key recorded in `checkpointFile`. */
  resume?: boolean;
  /** Checked between batches: the purge stops cleanly after the batch in flight. */
  stop?: AbortSignal;
  onStart?: (info: StartInfo) => void;
  onBatch?: (progress: BatchProgress) => void;
}

export interface StartInfo {
  table: string;
  keyKind: KeySet['kind'];
  /** Rows matching --where (an estimate when counting took too long). */
  total: { rows: number; exact: boolean };
  /** Rows already done by the run being resumed. */
  resumedRows: number;
  targets: string[];
}

export interface BatchProgress {
  rows: number;
  batches: number;
  lastKey: string[];
}

export type EntryKind = `redis.${(typeof redisKinds)[number]}` | `cdn.${(typeof cdnKinds)[number]}`;

export interface UnknownSummary {
  rule: string;
  path: string;
  template: string;
  reason: UnknownReason;
  fallbackUsed: boolean;
  detail: string;
  rows: number;
}

export interface PurgeTableSummary {
  table: string;
  keyKind: KeySet['kind'];
  dryRun: boolean;
  /** Rows read in this run (plus `resumedRows` from the run resumed). */
  rows: number;
  resumedRows: number;
  batches: number;
  /** Entries purged (or planned) per kind, de-duplicated within each batch. */
  entries: Record<EntryKind, number>;
  /** The first few entries per kind. */
  samples: Record<EntryKind, string[]>;
  /** Templates some rows could not render (and whether the rule's fallback was purged instead). */
  unknown: UnknownSummary[];
  targets: string[];
  /** Templates of the table's rules that no configured target can purge (no cdn driver, …). */
  unpurgeable: Unpurgeable[];
  /** Set when stopped before the end: where --resume continues. */
  interrupted: boolean;
  lastKey?: string[];
}

const ALL_OPERATIONS: Rule['on'] = ['insert', 'update', 'delete', 'truncate'];
const SAMPLE = 5;

/**
 * The rules as a re-purge applies them: every rule of the table, whatever its `on` and `when`
 * say. A rule that purges only on insert (a list cache) or only on delete still derives entries
 * from the row, and after a lost slot or a restored backup any of them may be stale.
 */
export function repurgeRules(rules: readonly Rule[]): CompiledRules {
  return compileRules(
    rules.map((rule) => {
      const { when: _ignored, ...rest } = rule;
      return { ...rest, on: ALL_OPERATIONS };
    }),
  );
}

/**
 * The row as a synthetic change: an update whose old and new rows are both the row as it is now,
 * and whose key is the row's identity. With the rules of repurgeRules, `{col}`, `{new.col}` and
 * `{old.col}` all render from the row, so every entry any rule derives from it is purged, which an
 * insert (no old side) or a delete (no new side) would not do. It has no commit LSN
 * (`lsnIsCommit: false`), so its namespaces are bumped unconditionally: a WAL position read here
 * could be above a commit still in flight, whose own bump would then be skipped.
 */
export function rowChange(
  db: string,
  schema: string,
  table: string,
  row: Record<string, unknown>,
  keyColumns: readonly string[],
): ChangeEvent {
  return {
    v: 1,
    op: 'u',
    source: {
      db,
      schema,
      table,
      lsn: '0/0',
      xid: null,
      commitTs: new Date().toISOString(),
      origin: null,
      lsnIsCommit: false,
    },
    key: keyColumns.length > 0 ? Object.fromEntries(keyColumns.map((column) => [column, row[column]])) : null,
    before: row,
    after: row,
    unchanged: [],
  };
}

function emptyCounts<T>(make: () => T): Record<EntryKind, T> {
  return Object.fromEntries(
    [...redisKinds.map((k) => `redis.${k}`), ...cdnKinds.map((k) => `cdn.${k}`)].map((kind) => [
      kind,
      make(),
    ]),
  ) as Record<EntryKind, T>;
}

/**
 * `walpurge purge --table`: reads the rows (keyset pages of `batchSize`, bounded memory) and runs
 * each through the rules and the invalidator's own executor, as a synthetic change (rowChange).
 */
export async function purgeTable(options: PurgeTableOptions): Promise<PurgeTableSummary> {
  const { config, logger } = options;
  const dryRun = options.dryRun === true;
  if (!config.database) throw new UsageError('the config has no database section to read rows from', 'purge');
  const qualified = qualifyTable(options.table);
  const rules = repurgeRules(config.rules);
  if (rules.rulesFor(qualified).length === 0) {
    const watched = rules.tables();
    throw new UsageError(
      `no rule watches table ${qualified}${watched.length ? ` (rules watch: ${watched.join(', ')})` : ' (the config has no rules)'}`,
      'purge',
    );
  }
  const [schema, table] = qualified.split('.') as [string, string];
  const where = options.where?.trim() ? options.where.trim() : undefined;
  // Read-only: --where is the user's SQL, and this command never writes to the database.
  const client: pg.Client = await connectDatabase(config.database, {
    sessionOptions: `${REPLICATION_SESSION_OPTIONS} -c default_transaction_read_only=on`,
  });
  let purgers: Purger[] = [];
  try {
    const facts = await describeTable(client, schema, table);
    if (where) await checkWhere(client, facts, where);
    let checkpoint: Checkpoint | undefined;
    if (options.resume) {
      checkpoint = await readCheckpoint(options.checkpointFile, { table: qualified, where: where ?? null });
      const keyKind = `${facts.keySet.kind} (${facts.keySet.expressions.join(', ')})`;
      if (checkpoint.keyKind !== keyKind)
        throw new UsageError(
          `--resume: the checkpoint's key is ${checkpoint.keyKind}, the table's is now ${keyKind}: start again without --resume`,
          'purge',
        );
      if (facts.keySet.kind === 'ctid' && facts.partitioned)
        throw new UsageError(
          `--resume: ${qualified} is partitioned and has no primary key, so the checkpoint's (tableoid, ctid) cannot be checked against rewrites of its partitions: start again without --resume`,
          'purge',
        );
      if (facts.keySet.kind === 'ctid' && checkpoint.fileNode !== facts.fileNode)
        throw new UsageError(
          `--resume: ${qualified} was rewritten since the checkpoint (VACUUM FULL, CLUSTER, …), so its ctid positions moved: start again without --resume`,
          'purge',
        );
    }
    const total = await countRows(client, facts, where);
    const backoff = {
      initialMs: config.invalidator.retryInitialMs,
      maxMs: config.invalidator.retryMaxMs,
      multiplier: 2,
      jitter: 0.5,
    };
    // Fail now, with the address, rather than retry inside the first batch.
    if (!dryRun && config.redis) (await openCacheRedis(config.redis, logger)).disconnect();
    // Built for a dry run too, to tell which entries no configured target can take; never called then.
    purgers = createPurgers(config, rules, logger, backoff);
    const targets = purgers.map((purger) => purger.name);
    const unpurgeable = rules.rulesFor(qualified).flatMap((rule) =>
      [...rule.templates, ...rule.fallback].flatMap((template) =>
        unsupported(
          {
            rule: rule.name,
            path: template.path,
            template: template.parsed.source,
            kind: template.kind,
            as: template.kind,
            entry: 'https://example.invalid/entry',
          },
          purgers,
        ),
      ),
    );
    const resumedRows = checkpoint?.rows ?? 0;
    options.onStart?.({
      table: qualified,
      keyKind: facts.keySet.kind,
      total,
      resumedRows,
      targets,
    });
    const metrics = createInvalidatorMetrics(createMetricsRegistry());
    const executor = new PurgeExecutor(rules, purgers, metrics, logger, backoff);
    // Not the stop signal: a batch in flight finishes (its purges are retried as in the pipeline),
    // then the loop stops. A second Ctrl-C ends the process; the checkpoint names the last batch.
    const purgeSignal = new AbortController().signal;
    const reader = new TableReader(client, facts, where);
    const database = new URL(config.database.url).pathname.replace(/^\//, '');
    const summary: PurgeTableSummary = {
      table: qualified,
      keyKind: facts.keySet.kind,
      dryRun,
      rows: 0,
      resumedRows,
      batches: 0,
      entries: emptyCounts(() => 0),
      samples: emptyCounts((): string[] => []),
      unknown: [],
      targets,
      unpurgeable,
      interrupted: false,
    };
    const unknown = new Map<string, UnknownSummary>();
    let after = checkpoint?.lastKey;
    for (;;) {
      if (options.stop?.aborted) {
        summary.interrupted = true;
        break;
      }
      const page = await reader.page(after, options.batchSize);
      if (page.rows.length === 0) break;
      const events = page.rows.map((row) => rowChange(database, schema, table, row, facts.keySet.columns));
      const accumulator = new TargetAccumulator();
      for (const event of events) {
        const plan = rules.planPurges(event);
        accumulator.add(plan);
        for (const item of plan.unknown ?? []) {
          const id = `${item.path}|${item.reason}|${String(item.fallbackUsed)}`;
          const seen = unknown.get(id);
          if (seen) seen.rows += 1;
          else unknown.set(id, { ...item, rows: 1 });
        }
      }
      const planned = accumulator.toTargets();
      for (const kind of redisKinds) record(summary, `redis.${kind}`, planned.redis[kind]);
      for (const kind of cdnKinds) record(summary, `cdn.${kind}`, planned.cdn[kind]);
      if (!dryRun) await executor.handle(events, purgeSignal);
      after = page.keys[page.keys.length - 1];
      summary.rows += page.rows.length;
      summary.batches += 1;
      summary.lastKey = after;
      if (!dryRun && after) {
        await writeCheckpoint(options.checkpointFile, {
          version: 1,
          table: qualified,
          where: where ?? null,
          keyKind: `${facts.keySet.kind} (${facts.keySet.expressions.join(', ')})`,
          lastKey: after,
          fileNode: facts.keySet.kind === 'ctid' ? facts.fileNode : null,
          rows: resumedRows + summary.rows,
          updatedAt: new Date().toISOString(),
        });
      }
      options.onBatch?.({ rows: resumedRows + summary.rows, batches: summary.batches, lastKey: after ?? [] });
      if (page.rows.length < options.batchSize) break;
    }
    summary.unknown = [...unknown.values()];
    if (!dryRun && !summary.interrupted) await removeCheckpoint(options.checkpointFile);
    return summary;
  } finally {
    await Promise.all(purgers.map((purger) => purger.close().catch(() => {})));
    await client.end().catch(() => {});
  }
}

function record(summary: PurgeTableSummary, kind: EntryKind, entries: readonly string[]): void {
  summary.entries[kind] += entries.length;
  const sample = summary.samples[kind];
  for (const entry of entries) {
    if (sample.length >= SAMPLE) break;
    if (!sample.includes(entry)) sample.push(entry);
  }
}
