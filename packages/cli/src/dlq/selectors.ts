import type { DeadLetterSelection } from '@walpurge/invalidator';
import { UsageError } from '../cli-io.js';
import { stringOption, type OptionSpec, type OptionValues } from '../command.js';

/** Why an event may be dead-lettered (`--reason`); `undecodable` exists only on the Kafka topic. */
export const DEAD_LETTER_CAUSES = ['purge-rejected', 'cdn-rejected', 'undecodable'] as const;

/** The selector flags `dlq list` and `dlq redrive` share, in both transports. */
export const selectorOptions: Record<string, OptionSpec> = {
  rule: { type: 'string', description: 'Only events this rule (its name) matched.', valueName: 'RULE' },
  table: {
    type: 'string',
    description: "Only events of this table ('schema.table', or 'table' in public).",
    valueName: 'TABLE',
  },
  reason: {
    type: 'string',
    description: `Only events dead-lettered for this cause: ${DEAD_LETTER_CAUSES.join(', ')}.`,
    valueName: 'CAUSE',
  },
  since: {
    type: 'string',
    description:
      'Only events dead-lettered at or after TIME: ISO-8601 (2026-01-31T12:00:00Z) or a duration ago (30m, 2h, 7d).',
    valueName: 'TIME',
  },
  until: {
    type: 'string',
    description: 'Only events dead-lettered before TIME (same forms as --since).',
    valueName: 'TIME',
  },
};

const DURATION_UNITS_MS: Record<string, number> = {
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};
/** A date, optionally with a time (T or space) and a zone: what ISO-8601 forms people type. */
const ISO_8601 = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/i;

/** `--since`/`--until`: an ISO-8601 time, or a duration before `now` like `2h`. */
export function parseTime(text: string, flag: string, command: string, now: Date): Date {
  const trimmed = text.trim();
  const duration = /^(\d+)([smhdw])$/.exec(trimmed);
  if (duration) {
    const [, amount, unit] = duration as unknown as [string, string, string];
    return new Date(now.getTime() - Number(amount) * (DURATION_UNITS_MS[unit] ?? 0));
  }
  if (ISO_8601.test(trimmed)) {
    const time = Date.parse(trimmed.replace(' ', 'T'));
    if (!Number.isNaN(time)) return new Date(time);
  }
  throw new UsageError(
    `--${flag} '${text}' is neither an ISO-8601 time (2026-01-31T12:00:00Z) nor a duration ago (30s, 15m, 2h, 7d, 1w)`,
    command,
  );
}

/** `users` → `public.users`, as dead letters record tables. */
export function qualifyTable(text: string): string {
  const trimmed = text.trim();
  return trimmed.includes('.') ? trimmed : `public.${trimmed}`;
}

/** The selection the flags ask for; usage errors name the flag. */
export function parseSelection(
  options: OptionValues,
  command: string,
  now = new Date(),
): DeadLetterSelection {
  const selection: DeadLetterSelection = {};
  const rule = stringOption(options, 'rule');
  if (rule !== undefined) {
    if (rule.trim() === '') throw new UsageError('--rule needs a rule name', command);
    selection.rule = rule.trim();
  }
  const table = stringOption(options, 'table');
  if (table !== undefined) {
    if (!/^[\w$]+(\.[\w$]+)?$/.test(table.trim()))
      throw new UsageError(`--table '${table}' is not 'schema.table' or 'table'`, command);
    selection.table = qualifyTable(table);
  }
  const reason = stringOption(options, 'reason');
  if (reason !== undefined) {
    if (!(DEAD_LETTER_CAUSES as readonly string[]).includes(reason))
      throw new UsageError(`--reason '${reason}' is not one of ${DEAD_LETTER_CAUSES.join(', ')}`, command);
    selection.cause = reason;
  }
  const since = stringOption(options, 'since');
  if (since !== undefined) selection.since = parseTime(since, 'since', command, now);
  const until = stringOption(options, 'until');
  if (until !== undefined) selection.until = parseTime(until, 'until', command, now);
  if (selection.since && selection.until && selection.since >= selection.until)
    throw new UsageError(
      `--since (${selection.since.toISOString()}) must be before --until (${selection.until.toISOString()})`,
      command,
    );
  return selection;
}

/** Whether a selection selects anything narrower than everything (for messages). */
export function isEverything(selection: DeadLetterSelection): boolean {
  return Object.values(selection).every((value) => value === undefined);
}

export function parseLimit(text: string | undefined, command: string): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text) || Number(text) < 1)
    throw new UsageError(`--limit must be a positive integer (got '${text}')`, command);
  return Number(text);
}
