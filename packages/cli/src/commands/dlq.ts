import { listFailedWrites, redriveFailedWrites } from '@walpurge/flusher';
import { ExitCode, UsageError, writeLine } from '../cli-io.js';
import { configOption, jsonOption, stringOption, type CommandSpec, type OptionValues } from '../command.js';
import { loadCliConfig } from '../load-cli-config.js';
import { listDeadLetterEvents, redriveDeadLetterEvents } from '../dlq/dead-letter-events.js';
import { connectOnce } from '../live/queue-redis.js';

const sourceOption = {
  type: 'string',
  description:
    'events: the Kafka dead-letter topic (poison change events); writes: failed write-behind rows.',
  choices: ['events', 'writes'],
  default: 'events',
  env: 'WALPURGE_DLQ_SOURCE',
  valueName: 'SOURCE',
} as const;

function parseLimit(options: OptionValues, command: string): number {
  const text = stringOption(options, 'limit') ?? '100';
  if (!/^\d+$/.test(text) || Number(text) < 1)
    throw new UsageError(`--limit must be a positive integer (got '${text}')`, command);
  return Number(text);
}

export const dlqListCommand: CommandSpec = {
  name: 'dlq list',
  summary: 'List dead letters: poison change events (Kafka) or failed write-behind rows.',
  usage: 'walpurge dlq list [--config FILE] [--source events|writes] [--limit N] [--json]',
  options: {
    config: configOption,
    source: sourceOption,
    limit: {
      type: 'string',
      description: 'Show at most N entries.',
      default: '100',
      env: 'WALPURGE_DLQ_LIMIT',
      valueName: 'N',
    },
    json: jsonOption,
  },
  async run({ io, options }) {
    const { config } = await loadCliConfig(options, io);
    const limit = parseLimit(options, 'dlq list');
    if (options['source'] === 'writes') {
      if (!config.flusher)
        throw new UsageError('--source writes needs a flusher section in the config', 'dlq list');
      const redis = await connectOnce(config.flusher.queueRedisUrl, 'the queue Redis');
      const failed = await listFailedWrites({ config, limit, redis }).finally(() => redis.disconnect());
      if (options['json'] === true) writeLine(io.stdout, JSON.stringify(failed, null, 2));
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
    if (config.transport !== 'kafka' || !config.kafka)
      throw new UsageError(
        '--source events needs transport: kafka (the dead-letter topic lives in Kafka)',
        'dlq list',
      );
    const events = await listDeadLetterEvents(config.kafka, limit);
    if (options['json'] === true) writeLine(io.stdout, JSON.stringify(events, null, 2));
    else if (events.length === 0)
      writeLine(io.stdout, `no dead-letter events in ${config.kafka.deadLetterTopic}`);
    else {
      for (const event of events) {
        const headers = Object.entries(event.headers)
          .map(([name, value]) => `${name}=${value}`)
          .join(' ');
        writeLine(
          io.stdout,
          `${event.partition}:${event.offset}  ${event.timestamp}  key ${event.key ?? '(none)'}  ${headers}\n    ${event.value.slice(0, 300)}`,
        );
      }
    }
    return ExitCode.Ok;
  },
};

export const dlqRedriveCommand: CommandSpec = {
  name: 'dlq redrive',
  summary: 'Send dead letters back for another try (after fixing the cause).',
  usage: 'walpurge dlq redrive [--config FILE] [--source events|writes] [--id ID[,ID...]]',
  options: {
    config: configOption,
    source: sourceOption,
    id: {
      type: 'string',
      description: 'Only this job id (writes); repeatable as a comma-separated list.',
      valueName: 'IDS',
    },
  },
  details: `events: copies every message of the dead-letter topic back to the change topic (the invalidator
purges idempotently, so a replay is harmless) and reports how many; the dead-letter topic is left
as it is (its retention removes them).
writes: re-queues failed write-behind jobs; each writes the row's latest pending value, version-guarded.`,
  async run({ io, options }) {
    const { config } = await loadCliConfig(options, io);
    const ids = (stringOption(options, 'id') ?? '')
      .split(',')
      .map((id) => id.trim())
      .filter(Boolean);
    if (options['source'] === 'writes') {
      if (!config.flusher)
        throw new UsageError('--source writes needs a flusher section in the config', 'dlq redrive');
      const redis = await connectOnce(config.flusher.queueRedisUrl, 'the queue Redis');
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
    if (config.transport !== 'kafka' || !config.kafka)
      throw new UsageError(
        '--source events needs transport: kafka (the dead-letter topic lives in Kafka)',
        'dlq redrive',
      );
    if (ids.length > 0) throw new UsageError('--id applies to --source writes only', 'dlq redrive');
    const count = await redriveDeadLetterEvents(config.kafka);
    writeLine(
      io.stdout,
      `copied ${count} dead-letter event${count === 1 ? '' : 's'} from ${config.kafka.deadLetterTopic} back to ${config.kafka.topic}`,
    );
    return ExitCode.Ok;
  },
};
