import { ChangeEventV1, type ChangeEvent, type Operation } from '@walpurge/protocol';
import type { ConfigProblem } from '@walpurge/config';
import {
  cdnSupportsPrefixes,
  cdnUrlTemplateProblems,
  compileRules,
  namespaceKey,
  truncateProblems,
  type CompiledRule,
  type PurgePlan,
  type UnknownReason,
} from '@walpurge/rules';
import { ExitCode, UsageError, writeLine } from '../cli-io.js';
import {
  configOption,
  jsonOption,
  requireString,
  stringOption,
  type CommandSpec,
  type OptionValues,
} from '../command.js';
import { loadCliConfig } from '../load-cli-config.js';
import { qualifyTable } from '../live/table-catalog.js';

const OPS: Record<string, Operation> = {
  c: 'c',
  insert: 'c',
  u: 'u',
  update: 'u',
  d: 'd',
  delete: 'd',
  t: 't',
  truncate: 't',
};

function parseRow(options: OptionValues, name: string): Record<string, unknown> | null {
  const text = stringOption(options, name);
  if (text === undefined) return null;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new UsageError(
      `--${name} is not valid JSON: ${error instanceof Error ? error.message : String(error)}`,
      'explain',
    );
  }
  if (value === null) return null;
  if (typeof value !== 'object' || Array.isArray(value))
    throw new UsageError(`--${name} must be a JSON object like '{"id":42}'`, 'explain');
  return value as Record<string, unknown>;
}

/** The change as the listener would have produced it, from the command line. */
export function eventFromOptions(options: OptionValues): ChangeEvent {
  const table = qualifyTable(requireString(options, 'table', 'explain'));
  const opText = requireString(options, 'op', 'explain');
  const op = OPS[opText];
  if (!op)
    throw new UsageError(
      `--op must be one of c, u, d, t (or insert, update, delete, truncate), got '${opText}'`,
      'explain',
    );
  const before = parseRow(options, 'before');
  const after = parseRow(options, 'after');
  const key = parseRow(options, 'key');
  if ((op === 'c' || op === 'u') && !after)
    throw new UsageError(`--after is required for ${op === 'c' ? 'inserts' : 'updates'}`, 'explain');
  if (op === 'd' && !before && !key)
    throw new UsageError('--before (or --key) is required for deletes', 'explain');
  const unchanged = (stringOption(options, 'unchanged') ?? '')
    .split(',')
    .map((column) => column.trim())
    .filter(Boolean);
  const [schema, name] = table.split('.') as [string, string];
  const parsed = ChangeEventV1.safeParse({
    v: 1,
    op,
    source: {
      db: 'explain',
      schema,
      table: name,
      lsn: '0/0',
      xid: null,
      commitTs: new Date().toISOString(),
      origin: null,
    },
    key: op === 't' ? null : (key ?? (op === 'd' ? null : null)),
    before: op === 'c' || op === 't' ? null : before,
    after: op === 'd' || op === 't' ? null : after,
    unchanged,
  });
  if (!parsed.success)
    throw new UsageError(parsed.error.issues.map((issue) => issue.message).join('; '), 'explain');
  return parsed.data;
}

const SECTIONS = [
  ['redis keys', (plan: PurgePlan) => plan.redis.keys],
  ['redis patterns', (plan: PurgePlan) => plan.redis.patterns],
  ['redis tags', (plan: PurgePlan) => plan.redis.tags],
  ['redis namespaces', (plan: PurgePlan) => plan.redis.namespaces],
  ['cdn urls', (plan: PurgePlan) => plan.cdn.urls],
  ['cdn tags', (plan: PurgePlan) => plan.cdn.tags],
  ['cdn prefixes', (plan: PurgePlan) => plan.cdn.prefixes],
] as const;

// Every reason the rules can give (the Record type makes a new one a compile error here).
const REASONS: Record<UnknownReason, string> = {
  'unchanged-toast': 'unchanged TOASTed column, value not sent',
  'old-value-unavailable': 'old value not sent (needs REPLICA IDENTITY FULL)',
  'column-missing': 'column not in the row',
  truncate: 'truncate has no rows',
  'empty-value': 'empty value, could widen the purge',
  'dot-segment': "value is '.' or '..', a parent URL path that could widen the purge",
};

/** Rule name -> its `version` column, for the rules of the table that declare one. */
function versionColumns(rules: readonly CompiledRule[]): Map<string, string> {
  const columns = new Map<string, string>();
  for (const rule of rules)
    if (rule.source.version !== undefined) columns.set(rule.name, rule.source.version);
  return columns;
}

/**
 * `refused`: problems `walpurge validate` and start report for the rules of this table (e.g. a
 * truncate they cannot purge), so explain never shows a plan the daemon would not run silently.
 * `versions`: the rules' version columns (rule name -> column), shown under each rule.
 */
export function renderPlan(
  event: ChangeEvent,
  plan: PurgePlan,
  keyPrefix: string,
  refused: readonly ConfigProblem[] = [],
  versions: ReadonlyMap<string, string> = new Map(),
): string {
  const lines: string[] = [];
  const opName = { c: 'insert', u: 'update', d: 'delete', t: 'truncate' }[event.op];
  lines.push(`${event.source.schema}.${event.source.table} ${opName}`);
  if (plan.rules.length === 0) lines.push('  no rule watches this table');
  for (const outcome of plan.rules) {
    lines.push(
      `  rule ${outcome.rule}: ${outcome.purged ? 'applies' : `skipped (${outcome.reason ?? 'no reason given'})`}`,
    );
    const version = versions.get(outcome.rule);
    if (version !== undefined)
      lines.push(`    version column: ${version} (the consistency observer compares cached entries with it)`);
  }
  lines.push('');
  const width = Math.max(...SECTIONS.map(([label]) => label.length)) + 2;
  for (const [label, pick] of SECTIONS) {
    const entries = pick(plan);
    if (entries.length === 0) continue;
    entries.forEach((entry, i) =>
      lines.push(`${i === 0 ? `${label}:`.padEnd(width) : ' '.repeat(width)}${entry}`),
    );
  }
  for (const outcome of plan.rules) {
    for (const ignored of outcome.ignoredOldValues ?? []) {
      lines.push(
        `old entry not purged: ${ignored.path} ${JSON.stringify(ignored.template)} {${ignored.column}}: old value not sent -> ignored (oldValues: ignore-missing)`,
      );
    }
  }
  for (const unknown of plan.unknown ?? []) {
    const column = unknown.column ? ` {${unknown.column}}` : '';
    lines.push(
      `unknown value: ${unknown.path} ${JSON.stringify(unknown.template)}${column}: ${REASONS[unknown.reason]}${unknown.fallbackUsed ? ' -> fallback purged' : ' -> not purged'}`,
    );
  }
  if (plan.skipped) lines.push(`nothing to purge: ${plan.skipped}`);
  for (const problem of refused)
    lines.push(`refused by walpurge validate and at start: ${problem.path}: ${problem.message}`);
  if (keyPrefix && (plan.redis.keys.length || plan.redis.patterns.length || plan.redis.tags.length)) {
    lines.push(
      `(redis.keyPrefix '${keyPrefix}' is prepended to every key and pattern; tag sets live at '${keyPrefix}tag:<tag>')`,
    );
  }
  if (plan.redis.namespaces.length > 0) {
    lines.push(
      `(each namespace's version at '${namespaceKey(keyPrefix, '<namespace>')}' is set to the change's commit LSN unless it is already newer; entries stored under the old version become unreachable)`,
    );
  }
  return `${lines.join('\n')}\n`;
}

export const explainCommand: CommandSpec = {
  name: 'explain',
  summary:
    'Show which keys, patterns, tags, namespaces and URLs one row change would purge (touches nothing).',
  usage:
    'walpurge explain [--config FILE] --table T --op c|u|d|t [--before JSON] [--after JSON] [--key JSON] [--unchanged COLS] [--json]',
  options: {
    config: configOption,
    table: {
      type: 'string',
      description: "Table of the change: 'schema.table' or 'table' (public).",
      valueName: 'T',
      required: true,
    },
    op: {
      type: 'string',
      description: 'Operation: c|u|d|t or insert|update|delete|truncate.',
      valueName: 'OP',
      required: true,
    },
    before: {
      type: 'string',
      description: 'Old row as JSON (updates and deletes; what REPLICA IDENTITY sends).',
      valueName: 'JSON',
    },
    after: { type: 'string', description: 'New row as JSON (inserts and updates).', valueName: 'JSON' },
    key: {
      type: 'string',
      description: 'Replica-identity key columns as JSON (deletes without --before).',
      valueName: 'JSON',
    },
    unchanged: {
      type: 'string',
      description: 'Comma-separated TOASTed columns the change did not send.',
      valueName: 'COLS',
    },
    json: jsonOption,
  },
  details: `Example:
  walpurge explain --config examples/walpurge.yaml --table users --op u \\
    --before '{"id":1,"email":"ada@example.com","name":"Ada"}' \\
    --after  '{"id":1,"email":"ada@new.example","name":"Ada"}'
Uses the rules of the config only; no database, Redis or CDN is contacted.`,
  async run({ io, options }) {
    const event = eventFromOptions(options);
    const { config, problemAt } = await loadCliConfig(options, io, { tlsFiles: 'skip' });
    const truncateOptions = { cdnPrefixPurge: cdnSupportsPrefixes(config.cdn) };
    const rules = compileRules(config.rules, truncateOptions);
    const plan = rules.planPurges(event);
    const table = `${event.source.schema}.${event.source.table}`;
    const refused = [
      ...cdnUrlTemplateProblems(rules.rulesFor(table), problemAt),
      ...truncateProblems(rules.rulesFor(table), problemAt, truncateOptions),
    ];
    const versions = versionColumns(rules.rulesFor(table));
    if (options['json'] === true) {
      const extra = {
        ...(refused.length ? { refused } : {}),
        ...(versions.size ? { versionColumns: Object.fromEntries(versions) } : {}),
      };
      writeLine(io.stdout, JSON.stringify({ event, plan, ...extra }, null, 2));
    } else io.stdout.write(renderPlan(event, plan, config.redis?.keyPrefix ?? '', refused, versions));
    return ExitCode.Ok;
  },
};
