import { QUEUE_REDIS_TLS, createLogger, type Logger } from '@walpurge/core';
import {
  queueRedisConnection,
  type DatabaseConnection,
  type KafkaConfig,
  type WalpurgeConfig,
} from '@walpurge/config';
import type { DeadLetterSelection } from '@walpurge/invalidator';
import { listFailedWrites, redriveFailedWrites } from '@walpurge/flusher';
import { ExitCode, UsageError, writeLine, type CliIo } from '../cli-io.js';
import {
  configOption,
  jsonOption,
  stringOption,
  type CommandSpec,
  type OptionSpec,
  type OptionValues,
} from '../command.js';
import { loadCliConfig } from '../load-cli-config.js';
import { readDeadLetterTopic, redriveTopicDeadLetters } from '../dlq/dead-letter-events.js';
import { formatEntry, type DeadLetterEntry } from '../dlq/dead-letter-entry.js';
import { isEverything, parseLimit, parseSelection, selectorOptions } from '../dlq/selectors.js';
import {
  connectDeadLetterTable,
  entryOfRow,
  listTableDeadLetters,
  redriveTableDeadLetters,
} from '../dlq/table-dead-letters.js';
import { connectOnce } from '../live/queue-redis.js';
import { stopSignal } from '../purge/stop-signal.js';

const sourceOption: OptionSpec = {
  type: 'string',
  description:
    'events: change events refused for good (the Kafka dead-letter topic, or database.deadLetterTable with transport: inline); writes: failed write-behind rows.',
  choices: ['events', 'writes'],
  default: 'events',
  env: 'WALPURGE_DLQ_SOURCE',
  valueName: 'SOURCE',
};

const SELECTOR_FLAGS = [...Object.keys(selectorOptions), 'limit', 'dry-run'];

/** The selectors are about change events: refuse them with --source writes rather than ignore them. */
function refuseSelectorsForWrites(options: OptionValues, command: string): void {
  const given = SELECTOR_FLAGS.filter(
    (name) => options[name] !== undefined && !(name === 'limit' && command === 'dlq list'),
  );
  if (given.length > 0)
    throw new UsageError(`--${given.join(', --')} applies to --source events only`, command);
}

type Where =
  | { kind: 'kafka'; config: WalpurgeConfig & { kafka: KafkaConfig } }
  | { kind: 'table'; config: WalpurgeConfig; database: DatabaseConnection; table: string };

/** Where this deployment keeps its dead letters: the topic with Kafka, the table inline. */
function whereDeadLetters(config: WalpurgeConfig, command: string): Where {
  if (config.transport === 'kafka') {
    if (!config.kafka) throw new UsageError('transport: kafka needs a kafka section', command);
    return { kind: 'kafka', config: { ...config, kafka: config.kafka } };
  }
  if (!config.database)
    throw new UsageError(
      'transport: inline keeps dead letters in database.deadLetterTable: the config needs a database section',
      command,
    );
  return { kind: 'table', config, database: config.database, table: config.database.deadLetterTable };
}

function describeWhere(where: Where): string {
  return where.kind === 'kafka' ? where.config.kafka.deadLetterTopic : where.table;
}

async function selectedEntries(
  where: Where,
  selection: DeadLetterSelection,
  limit: number,
): Promise<DeadLetterEntry[]> {
  if (where.kind === 'kafka')
    return (await readDeadLetterTopic(where.config, selection, limit)).map((letter) => letter.entry);
  const client = await connectDeadLetterTable(where.database);
  try {
    return (await listTableDeadLetters(client, where.table, selection, limit)).map(entryOfRow);
  } finally {
    await client.end().catch(() => {});
  }
}

function printEntries(io: CliIo, entries: DeadLetterEntry[], json: boolean, empty: string): void {
  if (json) writeLine(io.stdout, JSON.stringify(entries, null, 2));
  else if (entries.length === 0) writeLine(io.stdout, empty);
  else for (const entry of entries) writeLine(io.stdout, formatEntry(entry));
}

const plural = (count: number, word: string): string => `${count} ${word}${count === 1 ? '' : 's'}`;

function stderrLogger(io: CliIo): Logger {
  return createLogger({
    level: 'warn',
    pretty: false,
    destination: { write: (text: string) => void io.stderr.write(text) },
  });
}

export const dlqListCommand: CommandSpec = {
  name: 'dlq list',
  summary: 'List dead letters: change events refused for good (topic or table), or failed write-behind rows.',
  usage:
    'walpurge dlq list [--config FILE] [--source events|writes] [--rule R] [--table T] [--reason CAUSE] [--since TIME] [--until TIME] [--limit N] [--json]',
  options: {
    config: configOption,
    source: sourceOption,
    ...selectorOptions,
    limit: {
      type: 'string',
      description: 'Show at most N entries (default 100).',
      env: 'WALPURGE_DLQ_LIMIT',
      valueName: 'N',
    },
    json: jsonOption,
  },
  details: `events, the same in both transports: transport: kafka reads the dead-letter topic (selectors
apply to its headers, the event and the record's timestamp); transport: inline reads
database.deadLetterTable. Oldest first. TIME is ISO-8601 (2026-01-31T12:00:00Z) or a duration ago
(30m, 2h, 7d).`,
  async run({ io, options }) {
    const command = 'dlq list';
    const { config } = await loadCliConfig(options, io);
    const limit = parseLimit(stringOption(options, 'limit'), command) ?? 100;
    const json = options['json'] === true;
    if (options['source'] === 'writes') {
      refuseSelectorsForWrites(options, command);
      if (!config.flusher)
        throw new UsageError('--source writes needs a flusher section in the config', command);
      const redis = await connectOnce(
        queueRedisConnection(config.flusher),
        'the queue Redis',
        QUEUE_REDIS_TLS,
      );
      const failed = await listFailedWrites({ config, limit, redis }).finally(() => redis.disconnect());
      if (json) writeLine(io.stdout, JSON.stringify(failed, null, 2));
      else if (failed.length === 0) writeLine(io.stdout, 'no failed writes');
      else {
        for (const write of failed) {
          const when = write.failedAt ? write.failedAt.toISOString() : 'unknown time';
          const note = write.superseded ? ' (superseded by a newer write)' : '';
          writeLine(
            io.stdout,
            `${write.jobId}  ${write.table} ${write.key}  ${when}  attempts ${write.attemptsMade}${note}\n    ${write.reason}`,
          );
        }
      }
      return ExitCode.Ok;
    }
    const selection = parseSelection(options, command);
    const where = whereDeadLetters(config, command);
    const entries = await selectedEntries(where, selection, limit);
    const scope = isEverything(selection) ? '' : ' selected';
    printEntries(io, entries, json, `no${scope} dead-letter events in ${describeWhere(where)}`);
    return ExitCode.Ok;
  },
};

export const dlqRedriveCommand: CommandSpec = {
  name: 'dlq redrive',
  summary: 'Send dead letters back for another try (after fixing the cause).',
  usage:
    'walpurge dlq redrive [--config FILE] [--source events|writes] [--rule R] [--table T] [--reason CAUSE] [--since TIME] [--until TIME] [--limit N] [--dry-run] [--id ID[,ID...]]',
  options: {
    config: configOption,
    source: sourceOption,
    ...selectorOptions,
    limit: {
      type: 'string',
      description: 'Redrive at most N events (default: all selected).',
      valueName: 'N',
    },
    'dry-run': { type: 'boolean', description: 'Print what would be redriven; change nothing.' },
    id: {
      type: 'string',
      description: 'Only this job id (writes); repeatable as a comma-separated list.',
      valueName: 'IDS',
    },
  },
  details: `events, selected like dlq list (no selector: all of them):
  transport: kafka copies the selected records of the dead-letter topic back to the change topic
  (same key, so same partition; header walpurge-redriven-from); the dead-letter topic is left as it
  is (its retention removes them). The invalidator purges idempotently, so a replay is harmless.
  transport: inline runs the selected events through the invalidator's purge path in this process,
  a batch at a time, and deletes their rows once purged (one transaction per batch: an interrupted
  redrive resumes where it stopped). Events refused again are stored again and listed; the exit
  code is then 1.
writes: re-queues failed write-behind jobs; each writes the row's latest pending value, version-guarded.`,
  async run({ io, options }) {
    const command = 'dlq redrive';
    const loaded = await loadCliConfig(options, io);
    const { config } = loaded;
    const ids = (stringOption(options, 'id') ?? '')
      .split(',')
      .map((id) => id.trim())
      .filter(Boolean);
    if (options['source'] === 'writes') {
      refuseSelectorsForWrites(options, command);
      if (!config.flusher)
        throw new UsageError('--source writes needs a flusher section in the config', command);
      const redis = await connectOnce(
        queueRedisConnection(config.flusher),
        'the queue Redis',
        QUEUE_REDIS_TLS,
      );
      const { redriven } = await redriveFailedWrites({
        config,
        redis,
        ...(ids.length > 0 ? { jobIds: ids } : {}),
      }).finally(() => redis.disconnect());
      writeLine(
        io.stdout,
        `re-queued ${redriven.length} failed write${redriven.length === 1 ? '' : 's'}${redriven.length ? `: ${redriven.join(', ')}` : ''}`,
      );
      // An id that is not a failed job is most likely a typo: say so, and fail the command.
      const notFailed = ids.filter((id) => !redriven.includes(id));
      if (notFailed.length === 0) return ExitCode.Ok;
      writeLine(io.stderr, `not a failed write (wrong id, or already redriven): ${notFailed.join(', ')}`);
      return ExitCode.Failure;
    }
    if (ids.length > 0) throw new UsageError('--id applies to --source writes only', command);
    const selection = parseSelection(options, command);
    const limit = parseLimit(stringOption(options, 'limit'), command);
    const dryRun = options['dry-run'] === true;
    const where = whereDeadLetters(config, command);
    const from = describeWhere(where);

    if (dryRun) {
      const entries = await selectedEntries(where, selection, limit ?? Number.MAX_SAFE_INTEGER);
      for (const entry of entries) writeLine(io.stdout, formatEntry(entry));
      writeLine(
        io.stdout,
        `dry run: would redrive ${plural(entries.length, 'dead-letter event')} from ${from}`,
      );
      return ExitCode.Ok;
    }

    if (where.kind === 'kafka') {
      const letters = await readDeadLetterTopic(where.config, selection, limit ?? Number.MAX_SAFE_INTEGER);
      const count = await redriveTopicDeadLetters(where.config.kafka, letters, (done, total) => {
        if (total > done || done > 500) io.stderr.write(`redriven ${done} of ${total}\n`);
      });
      writeLine(
        io.stdout,
        `copied ${plural(count, 'dead-letter event')} from ${from} back to ${where.config.kafka.topic}`,
      );
      return ExitCode.Ok;
    }

    const stop = stopSignal(
      io,
      'interrupted: rows not yet redriven stay in the table; run the same command again to resume',
    );
    const client = await connectDeadLetterTable(where.database);
    try {
      const result = await redriveTableDeadLetters({
        config,
        configFile: loaded.file,
        client,
        table: where.table,
        selection,
        limit,
        logger: stderrLogger(io),
        signal: stop.signal,
        progress: (done, refused) => {
          if (done >= 100) io.stderr.write(`redrive: ${done} handled, ${refused} refused again\n`);
        },
      });
      writeLine(io.stdout, `redrove ${plural(result.redriven, 'dead-letter event')} from ${from}`);
      if (result.refusedAgain.length === 0) return ExitCode.Ok;
      writeLine(
        io.stdout,
        `${plural(result.refusedAgain.length, 'event')} refused again, stored again in ${from}:`,
      );
      for (const entry of result.refusedAgain) writeLine(io.stdout, formatEntry(entry));
      return ExitCode.Failure;
    } finally {
      stop.dispose();
      await client.end().catch(() => {});
    }
  },
};
