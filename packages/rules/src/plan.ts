import type { ChangeEvent } from '@walpurge/protocol';
import { qualifiedTable } from '@walpurge/protocol';
import type { CompiledRule, CompiledTemplate } from './compile.js';
import { escapeGlob } from './glob.js';
import { emptyTargets, type PurgeTargets } from './purge-targets.js';
import { hasFields, hasRowFields, literalPrefix, renderTemplate, wildcardPattern } from './render.js';
import { columnChanged, describeUnknownValue, type UnknownReason } from './row-values.js';

/** A template that could not be rendered because a value it needs is not in the event. */
export interface UnknownValue {
  rule: string;
  /** Config path of the template, e.g. `rules[0].redis.keys[1]`. */
  path: string;
  template: string;
  /** Missing column (empty for truncate). */
  column: string;
  reason: UnknownReason;
  /** Whether the rule's `fallback` targets were purged instead. */
  fallbackUsed: boolean;
  /** `reason` in words, naming the column and what happened instead (describeUnknownValue). */
  detail: string;
}

export interface RuleOutcome {
  rule: string;
  index: number;
  purged: boolean;
  /** Why the rule did nothing, when it did nothing. */
  reason?: string;
}

export interface PurgePlan extends PurgeTargets {
  /** Every rule of the event's table and what it did (for `walpurge explain` and debug logs). */
  rules: RuleOutcome[];
  /** Set when nothing is purged: why. */
  skipped?: string;
  unknown?: UnknownValue[];
}

const opNames = { c: 'insert', u: 'update', d: 'delete', t: 'truncate' } as const;

interface Collector {
  targets: PurgeTargets;
  unknown: Array<Omit<UnknownValue, 'fallbackUsed' | 'detail'>>;
}

function addEntry(targets: PurgeTargets, template: CompiledTemplate, text: string): void {
  const [section, kind] = template.kind.split('.') as ['redis' | 'cdn', string];
  const list = (targets[section] as unknown as Record<string, string[]>)[kind];
  if (list && !list.includes(text)) list.push(text);
}

/**
 * Row changes: inserts render `{col}` from the new row, deletes from the old row (or key), updates
 * from the new row and — when the event carries the old value and it differs (a key column changed) —
 * from the old row too, so both the old and the new entry are purged.
 */
function renderRowChange(
  rule: CompiledRule,
  templates: CompiledTemplate[],
  event: ChangeEvent,
  out: Collector,
): void {
  const primarySide = event.op === 'd' ? 'old' : 'new';
  for (const template of templates) {
    const result = renderTemplate(template, event, primarySide);
    if (result.ok) addEntry(out.targets, template, result.text);
    else if ('unknown' in result) {
      out.unknown.push({
        rule: rule.name,
        path: template.path,
        template: template.parsed.source,
        ...result.unknown,
      });
    }
    if (event.op === 'u' && hasRowFields(template)) {
      // The previous entry, when we can know it. Without an old value we cannot tell whether it
      // differed; {old.col} (validated against REPLICA IDENTITY) is the way to require it.
      const previous = renderTemplate(template, event, 'old');
      if (previous.ok) addEntry(out.targets, template, previous.text);
    }
  }
}

/**
 * Truncate removes every row, so every entry the rule derives from any row is stale. Templates
 * without fields are purged as written. Templated Redis keys and patterns are widened to a
 * table-wide pattern with each field as `*` (`user:{id}` → `user:*`), but only when the template
 * starts with literal text, so a template like `{email}` can never become "purge everything".
 * Other templated entries (tags, CDN entries, keys without a literal prefix) cannot be rendered:
 * they are reported as unknown, and the rule's `fallback` entries are purged instead.
 */
function renderTruncate(rule: CompiledRule, templates: CompiledTemplate[], out: Collector): void {
  for (const template of templates) {
    if (!hasFields(template)) {
      addEntry(
        out.targets,
        template,
        template.parsed.parts.map((part) => (part.kind === 'text' ? part.text : '')).join(''),
      );
      continue;
    }
    const widenable = template.kind === 'redis.keys' || template.kind === 'redis.patterns';
    if (widenable && literalPrefix(template) !== '') {
      const pattern = wildcardPattern(template, template.kind === 'redis.keys' ? escapeGlob : (text) => text);
      if (!out.targets.redis.patterns.includes(pattern)) out.targets.redis.patterns.push(pattern);
      continue;
    }
    out.unknown.push({
      rule: rule.name,
      path: template.path,
      template: template.parsed.source,
      column: '',
      reason: 'truncate',
    });
  }
}

function render(rule: CompiledRule, templates: CompiledTemplate[], event: ChangeEvent, out: Collector): void {
  if (event.op === 't') renderTruncate(rule, templates, out);
  else renderRowChange(rule, templates, event, out);
}

/** Applies one rule to one event. Pure: the same event always yields the same plan. */
export function planRule(
  rule: CompiledRule,
  event: ChangeEvent,
  targets: PurgeTargets,
  unknown: UnknownValue[],
): RuleOutcome {
  const base = { rule: rule.name, index: rule.index };
  if (!rule.operations.has(event.op)) {
    return {
      ...base,
      purged: false,
      reason: `${opNames[event.op]} is not in on: [${rule.source.on.join(', ')}]`,
    };
  }
  if (event.op === 'u' && rule.changed && !rule.changed.some((column) => columnChanged(event, column))) {
    return {
      ...base,
      purged: false,
      reason: `update changed none of when.changed: [${rule.changed.join(', ')}]`,
    };
  }
  const primary: Collector = { targets, unknown: [] };
  render(rule, rule.templates, event, primary);
  const fallbackUsed = primary.unknown.length > 0 && rule.fallback.length > 0;
  const report = (entry: Collector['unknown'][number], used: boolean): void => {
    unknown.push({
      ...entry,
      fallbackUsed: used,
      detail: describeUnknownValue({ ...entry, fallbackUsed: used }),
    });
  };
  for (const entry of primary.unknown) report(entry, fallbackUsed);
  if (fallbackUsed) {
    const fallback: Collector = { targets, unknown: [] };
    render(rule, rule.fallback, event, fallback);
    for (const entry of fallback.unknown) report(entry, false);
  }
  return { ...base, purged: true };
}

export function planForRules(rules: readonly CompiledRule[], event: ChangeEvent): PurgePlan {
  const targets = emptyTargets();
  const unknown: UnknownValue[] = [];
  const outcomes = rules.map((rule) => planRule(rule, event, targets, unknown));
  const plan: PurgePlan = { ...targets, rules: outcomes };
  if (unknown.length > 0) plan.unknown = unknown;
  const nothing = [...Object.values(targets.redis), ...Object.values(targets.cdn)].every(
    (list) => list.length === 0,
  );
  if (nothing) {
    if (outcomes.length === 0) plan.skipped = `no rule for table ${qualifiedTable(event)}`;
    else if (outcomes.every((outcome) => !outcome.purged))
      plan.skipped = outcomes.map((o) => `${o.rule}: ${o.reason ?? ''}`).join('; ');
    else plan.skipped = 'the matching rules derive no entries from this change';
  }
  return plan;
}
