import type { WalpurgeConfig } from '@walpurge/config';
import { createLogger, type Logger } from '@walpurge/core';
import { ExitCode, UsageError, writeLine, type CliIo } from '../cli-io.js';
import { configOption, stringOption, type CommandSpec, type OptionValues } from '../command.js';
import { ProgressBar } from '../format/progress.js';
import { loadCliConfig } from '../load-cli-config.js';
import { qualifyTable } from '../live/table-catalog.js';
import { defaultCheckpointFile } from '../purge/checkpoint.js';
import { purgeAll } from '../purge/purge-all.js';
import {
  purgeTable,
  repurgeRules,
  type BatchProgress,
  type PurgeTableSummary,
} from '../purge/purge-table.js';
import { renderPurgeAllSummary } from '../purge/render-purge-all.js';
import { stopSignal } from '../purge/stop-signal.js';
import { logLevelOption } from './shared-options.js';

const COMMAND = 'purge';

function parseBatchSize(options: OptionValues): number {
  const text = stringOption(options, 'batch-size') ?? '500';
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < 1 || value > 100_000)
    throw new UsageError(`--batch-size must be a whole number from 1 to 100000 (got '${text}')`, COMMAND);
  return value;
}

/** Consent: --yes, or a typed "yes" on a terminal; without a terminal, a usage error (exit 2). */
async function confirm(io: CliIo, options: OptionValues, question: string): Promise<boolean> {
  if (options['yes'] === true || options['dry-run'] === true) return true;
  if (!io.prompt)
    throw new UsageError(
      'refusing to purge without confirmation: pass --yes (no terminal to ask on), or --dry-run to see what would be purged',
      COMMAND,
    );
  const answer = await io.prompt(`${question} [y/N] `);
  if (/^y(es)?$/i.test(answer.trim())) return true;
  writeLine(io.stderr, 'not confirmed; nothing purged');
  return false;
}

function stderrLogger(io: CliIo, options: OptionValues): Logger {
  return createLogger({
    level: stringOption(options, 'log-level') ?? 'warn',
    pretty: false,
    destination: { write: (text: string) => void io.stderr.write(text) },
  });
}

function quoteArg(text: string): string {
  return /^[\w./:@=-]+$/.test(text) ? text : `'${text.replaceAll("'", "'\\''")}'`;
}

/** The command line that continues an interrupted purge. */
function resumeCommand(options: OptionValues, table: string, checkpoint: string): string {
  const parts = ['walpurge purge'];
  const config = stringOption(options, 'config');
  if (config && config !== 'walpurge.yaml') parts.push(`--config ${quoteArg(config)}`);
  parts.push(`--table ${quoteArg(table)}`);
  const where = stringOption(options, 'where');
  if (where) parts.push(`--where ${quoteArg(where)}`);
  if (stringOption(options, 'checkpoint')) parts.push(`--checkpoint ${quoteArg(checkpoint)}`);
  parts.push('--resume --yes');
  return parts.join(' ');
}

function renderTableSummary(summary: PurgeTableSummary, keyPrefix: string): string {
  const lines: string[] = [];
  const rows =
    summary.resumedRows > 0
      ? `${summary.rows} rows (after ${summary.resumedRows} done before)`
      : `${summary.rows} rows`;
  lines.push(
    `${summary.dryRun ? 'dry run, nothing purged: would purge' : 'purged'} the entries of ${rows} of ${summary.table} in ${summary.batches} batch(es); targets${summary.dryRun ? ' (not contacted)' : ''}: ${summary.targets.join(', ') || 'none'}`,
  );
  for (const [kind, count] of Object.entries(summary.entries)) {
    if (count === 0) continue;
    const sample = summary.samples[kind as keyof PurgeTableSummary['samples']];
    lines.push(`  ${kind.replace('.', ' ').padEnd(14)} ${count}  e.g. ${sample.join(', ')}`);
  }
  if (keyPrefix) lines.push(`  (redis names are shown without redis.keyPrefix '${keyPrefix}')`);
  const notPurged = summary.unknown.filter((item) => !item.fallbackUsed);
  for (const item of summary.unknown) {
    lines.push(
      `${item.fallbackUsed ? 'fallback used' : 'NOT PURGED'}: ${item.path} ${JSON.stringify(item.template)} (rule ${item.rule}) for ${item.rows} row(s): ${item.detail}`,
    );
  }
  for (const item of summary.unpurgeable)
    lines.push(
      `NOT PURGED on ${item.target ?? '?'}: ${item.path} ${JSON.stringify(item.template)} (rule ${item.rule}): ${item.reason}`,
    );
  if (notPurged.length > 0)
    lines.push(
      `${notPurged.length} template(s) could not be rendered for some rows; their entries may still be stale`,
    );
  return `${lines.join('\n')}\n`;
}

async function runTable(
  io: CliIo,
  options: OptionValues,
  config: WalpurgeConfig,
  table: string,
): Promise<number> {
  const where = stringOption(options, 'where');
  const checkpointFile = stringOption(options, 'checkpoint') ?? defaultCheckpointFile(table);
  const dryRun = options['dry-run'] === true;
  const batchSize = parseBatchSize(options);
  if (repurgeRules(config.rules).rulesFor(table).length === 0) {
    const watched = repurgeRules(config.rules).tables();
    throw new UsageError(
      `no rule watches table ${table}${watched.length ? ` (rules watch: ${watched.join(', ')})` : ''}`,
      COMMAND,
    );
  }
  const scope = `${table}${where ? ` where ${where}` : ''}`;
  if (!(await confirm(io, options, `Purge every cache entry the rules derive from the rows of ${scope}?`)))
    return ExitCode.Failure;
  const stop = stopSignal(
    io,
    dryRun
      ? undefined
      : 'stopping after the batch in flight (Ctrl-C again to quit at once; the checkpoint keeps the last finished batch)',
  );
  let bar: ProgressBar | undefined;
  let last: BatchProgress | undefined;
  try {
    const summary = await purgeTable({
      config,
      logger: stderrLogger(io, options),
      table,
      ...(where !== undefined ? { where } : {}),
      batchSize,
      dryRun,
      checkpointFile,
      resume: options['resume'] === true,
      stop: stop.signal,
      onStart: (info) => {
        const resumed = info.resumedRows > 0 ? `, resuming after ${info.resumedRows} rows` : '';
        writeLine(
          io.stderr,
          `purge ${info.table}: ${info.total.exact ? '' : '~'}${info.total.rows} row(s) by ${info.keyKind}${resumed}${dryRun ? ' (dry run)' : ''}`,
        );
        bar = new ProgressBar(io.stderr, `purge ${info.table}`, info.total.rows, info.resumedRows);
      },
      onBatch: (progress) => {
        last = progress;
        bar?.update(progress.rows);
      },
    });
    bar?.finish();
    io.stdout.write(renderTableSummary(summary, config.redis?.keyPrefix ?? ''));
    if (summary.interrupted) {
      writeLine(
        io.stderr,
        `interrupted after ${summary.resumedRows + summary.rows} row(s); the rows after key ${JSON.stringify(summary.lastKey ?? [])} are not purged yet.`,
      );
      if (!dryRun) writeLine(io.stderr, `resume with: ${resumeCommand(options, table, checkpointFile)}`);
      return ExitCode.Failure;
    }
    const incomplete = summary.unknown.some((item) => !item.fallbackUsed) || summary.unpurgeable.length > 0;
    if (incomplete && options['allow-partial'] !== true)
      writeLine(
        io.stderr,
        'some entries were not purged (listed above): exit code 1; pass --allow-partial to accept this',
      );
    return incomplete && options['allow-partial'] !== true ? ExitCode.Failure : ExitCode.Ok;
  } catch (error) {
    bar?.finish();
    if (last && !dryRun)
      writeLine(
        io.stderr,
        `stopped by an error after ${last.rows} row(s); resume with: ${resumeCommand(options, table, checkpointFile)}`,
      );
    throw error;
  } finally {
    stop.dispose();
  }
}

async function runAll(io: CliIo, options: OptionValues, config: WalpurgeConfig): Promise<number> {
  if (
    !(await confirm(
      io,
      options,
      `Purge the whole key space of all ${config.rules.length} rule(s) (every key, tag set, namespace and CDN prefix they can derive)?`,
    ))
  )
    return ExitCode.Failure;
  const stop = stopSignal(io);
  try {
    const summary = await purgeAll({
      config,
      logger: stderrLogger(io, options),
      dryRun: options['dry-run'] === true,
      signal: stop.signal,
      onProgress: (line) => writeLine(io.stderr, line),
    });
    const text = renderPurgeAllSummary(summary, config.redis?.keyPrefix ?? '');
    if (summary.complete) {
      io.stdout.write(text);
      return ExitCode.Ok;
    }
    // Loud: on stderr too, so it is seen even when stdout goes to a file.
    io.stdout.write(text);
    writeLine(
      io.stderr,
      `WARNING: ${summary.unpurgeable.length} template(s) could not be purged wholesale (listed above); their entries may still be stale.`,
    );
    if (options['allow-partial'] === true) return ExitCode.Ok;
    writeLine(io.stderr, 'exit code 1: pass --allow-partial to accept this');
    return ExitCode.Failure;
  } catch (error) {
    if (stop.signal.aborted) return interruptedAll(io);
    throw error;
  } finally {
    stop.dispose();
  }
}

/** --all has no position to resume from: its purges are idempotent, so it is simply run again. */
function interruptedAll(io: CliIo): number {
  writeLine(
    io.stderr,
    'interrupted: the key space is only partly purged; run walpurge purge --all again (purges are idempotent)',
  );
  return ExitCode.Failure;
}

export const purgeCommand: CommandSpec = {
  name: 'purge',
  summary: "Re-purge on demand: every entry derived from a table's rows, or every rule's whole key space.",
  usage:
    'walpurge purge [--config FILE] (--table T [--where SQL] [--batch-size N] [--resume] [--checkpoint FILE] | --all) [--dry-run] [--yes] [--allow-partial]',
  options: {
    config: configOption,
    table: {
      type: 'string',
      description: "Re-purge the entries of this table's rows: 'schema.table' or 'table' (public).",
      env: 'WALPURGE_PURGE_TABLE',
      valueName: 'T',
    },
    where: {
      type: 'string',
      description: 'Only rows matching this SQL condition (e.g. "updated_at > now() - interval \'1 day\'").',
      env: 'WALPURGE_PURGE_WHERE',
      valueName: 'SQL',
    },
    all: {
      type: 'boolean',
      description:
        "Purge every rule's whole key space (patterns, tag sets, namespaces, CDN prefixes and tags).",
      env: 'WALPURGE_PURGE_ALL',
    },
    'batch-size': {
      type: 'string',
      description: 'Rows read and purged per batch (bounds memory).',
      env: 'WALPURGE_PURGE_BATCH_SIZE',
      default: '500',
      valueName: 'N',
    },
    checkpoint: {
      type: 'string',
      description:
        'Checkpoint file of --table, written after every batch (default: walpurge-purge.<table>.checkpoint.json).',
      env: 'WALPURGE_PURGE_CHECKPOINT',
      valueName: 'FILE',
    },
    resume: {
      type: 'boolean',
      description: 'Continue an interrupted --table purge after the key in the checkpoint file.',
      env: 'WALPURGE_PURGE_RESUME',
    },
    'dry-run': {
      type: 'boolean',
      description: 'Show what would be purged (counts per kind and a sample); touch nothing.',
      env: 'WALPURGE_DRY_RUN',
    },
    'allow-partial': {
      type: 'boolean',
      description: 'Exit 0 even when some entries cannot be purged (they are still listed).',
      env: 'WALPURGE_PURGE_ALLOW_PARTIAL',
    },
    // Deliberately no environment variable (as for `slot drop`): consent is given per call.
    yes: { type: 'boolean', short: 'y', description: 'Do not ask for confirmation (for scripts).' },
    'log-level': { ...logLevelOption, default: 'warn' },
  },
  details: `--table purges the entries of rows that exist now: use it after adding a rule, or to refresh
what derives from some rows. It cannot reach entries of rows deleted meanwhile, nor the entries of
old values (an old slug or email), nor a detached partition's rows: after a lost replication slot,
a restored backup or a DETACH PARTITION use --all (after a lost slot: walpurge slot reset
--purge-all, which also re-creates the slot).

--table reads the rows (keyset pages over the primary key, else the replica identity index, else
ctid) and runs each through the rules as an update whose old and new rows are both the row, with
every rule of the table applied whatever its on/when: every entry derived from the row is purged,
by the same executor as the running invalidator. A checkpoint file records the last purged key after
every batch; Ctrl-C stops after the batch in flight and prints the --resume command (a second Ctrl-C
quits at once; the checkpoint still names the last finished batch). Rows updated meanwhile are
purged by the running walpurge as usual.

--all purges what the rules can ever derive: templates without fields as written; Redis keys,
patterns and tags with each field as * (user:{id} -> user:*), only when they start with literal
text; templated CDN URLs and prefixes as a prefix purge of their literal directory (never a host's
root); namespaces given a fresh version, templated ones
wherever SCAN finds a version key of their widened name. Anything that cannot be purged wholesale
(a template starting with a field, templated CDN tags, a CDN driver without prefix purges) is listed as NOT PURGED and the exit code is 1 unless
--allow-partial is given.

Without --yes (or --dry-run) a terminal asks for confirmation; without a terminal the command
refuses (exit 2).

Examples:
  walpurge purge --table users --where "id < 1000" --dry-run
  walpurge purge --table users --yes
  walpurge purge --all --dry-run`,
  async run({ io, options }) {
    const tableText = stringOption(options, 'table');
    const all = options['all'] === true;
    if (all && tableText) throw new UsageError('pass either --table or --all, not both', COMMAND);
    if (!all && !tableText)
      throw new UsageError('pass --table T (re-purge its rows) or --all (whole key space)', COMMAND);
    if (all) {
      for (const name of ['where', 'resume', 'checkpoint'])
        if (options[name] !== undefined && options[name] !== false)
          throw new UsageError(`--${name} applies to --table only`, COMMAND);
    }
    if (!tableText && stringOption(options, 'where')) throw new UsageError('--where needs --table', COMMAND);
    const { config } = await loadCliConfig(options, io);
    if (all) return runAll(io, options, config);
    return runTable(io, options, config, qualifyTable(tableText ?? ''));
  },
};
