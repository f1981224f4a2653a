import type { ChangeEvent } from '@walpurge/protocol';
import { qualifiedTable } from '@walpurge/protocol';
import type { CompiledRule, CompiledTemplate } from './compile.js';
import { emptyTargets, isEmptyTargets, type PurgeTargets } from './purge-targets.js';
import { hasRowFields, renderTemplate } from './render.js';
import { columnChanged, describeUnknownValue, type UnknownReason } from './row-values.js';
import { truncateTarget, type TruncateOptions } from './truncate-safety.js';

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
  /**
   * Templates whose old entry was not purged because the update did not carry an old value and the
   * rule says `oldValues: ignore-missing` (shown by `walpurge explain`).
   */
  ignoredOldValues?: Array<{ path: string; template: string; column: string }>;
  /**
   * Redis keys rendered only from an update's old values (the entry of the row as it was): another
   * row may validly hold such a key now, so the consistency observer does not check them.
   */
  oldSideKeys?: string[];
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
  /** Old-side renders that failed in a rule with `oldValues: ignore-missing`. */
  ignored: Array<Omit<UnknownValue, 'fallbackUsed' | 'detail'>>;
  /**
   * Redis keys by the side of the row they were rendered from (current: new, or old for a delete).
   * Only updates have an old side, so other operations skip the bookkeeping (two Sets per rule and
   * event showed in the invalidator's profile).
   */
  keySides: { current: Set<string>; old: Set<string> } | undefined;
}

const newCollector = (targets: PurgeTargets, event: ChangeEvent): Collector => ({
  targets,
  unknown: [],
  ignored: [],
  keySides: event.op === 'u' ? { current: new Set(), old: new Set() } : undefined,
});

export type PlanOptions = TruncateOptions;

/** `redis.keys` → ['redis', 'keys'], split once per kind rather than once per rendered entry. */
const kindParts = new Map<string, ['redis' | 'cdn', string]>();

function addEntry(targets: PurgeTargets, template: CompiledTemplate, text: string): void {
  let parts = kindParts.get(template.kind);
  if (!parts) {
    parts = template.kind.split('.') as ['redis' | 'cdn', string];
    kindParts.set(template.kind, parts);
  }
  const [section, kind] = parts;
  const list = (targets[section] as unknown as Record<string, string[]>)[kind];
  if (list && !list.includes(text)) list.push(text);
}

/**
 * Row changes: inserts render `{col}` from the new row, deletes from the old row (or key), updates
 * from the new row and from the old row too, so that an update changing a value in the key purges
 * both the old and the new entry. When the update does not carry an old value (REPLICA IDENTITY
 * DEFAULT / USING INDEX send only the identity columns), the old entry cannot be known: that is
 * reported as unknown (so the fallback is purged, or the miss is counted and logged), unless the
 * rule says `oldValues: ignore-missing`. An unchanged TOASTed value is the same on both sides, so
 * its old entry is the new one.
 */
function renderRowChange(
  rule: CompiledRule,
  templates: CompiledTemplate[],
  event: ChangeEvent,
  out: Collector,
): void {
  const primarySide = event.op === 'd' ? 'old' : 'new';
  for (const template of templates) {
    const isKey = template.kind === 'redis.keys';
    const result = renderTemplate(template, event, primarySide);
    if (result.ok) addEntry(out.targets, template, result.text);
    if (result.ok && isKey) out.keySides?.current.add(result.text);
    else if ('unknown' in result) {
      out.unknown.push({
        rule: rule.name,
        path: template.path,
        template: template.parsed.source,
        ...result.unknown,
      });
    }
    if (event.op === 'u' && hasRowFields(template)) {
      const previous = renderTemplate(template, event, 'old');
      if (previous.ok) addEntry(out.targets, template, previous.text);
      if (previous.ok && isKey) out.keySides?.old.add(previous.text);
      else if ('unknown' in previous && previous.unknown.reason !== 'unchanged-toast') {
        const entry = {
          rule: rule.name,
          path: template.path,
          template: template.parsed.source,
          ...previous.unknown,
        };
        // The opt-out covers an old value PostgreSQL did not send, nothing else: an old value that
        // was sent but cannot be rendered safely (empty, a dot segment) is reported as usual.
        if (rule.oldValues === 'ignore-missing' && previous.unknown.reason === 'old-value-unavailable')
          out.ignored.push(entry);
        // Once per template: the new side failing already reported it.
        else if (result.ok) out.unknown.push(entry);
      }
    }
  }
}

/**
 * Truncate removes every row: each template is purged as one entry covering all rows (see
 * truncate-safety.ts). Templates that cannot be widened are reported as unknown, and the rule's
 * `fallback` entries are purged instead; validate and start refuse rules where that is not enough.
 */
function renderTruncate(
  rule: CompiledRule,
  templates: CompiledTemplate[],
  out: Collector,
  options: PlanOptions,
): void {
  for (const template of templates) {
    const target = truncateTarget(template, options);
    if (target) {
      const list = (out.targets[target.section] as unknown as Record<string, string[]>)[target.kind];
      if (list && !list.includes(target.text)) list.push(target.text);
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

function render(
  rule: CompiledRule,
  templates: CompiledTemplate[],
  event: ChangeEvent,
  out: Collector,
  options: PlanOptions,
): void {
  if (event.op === 't') renderTruncate(rule, templates, out, options);
  else renderRowChange(rule, templates, event, out);
}

function reportUnknown(
  unknown: UnknownValue[],
  entry: Collector['unknown'][number],
  fallbackUsed: boolean,
): void {
  unknown.push({ ...entry, fallbackUsed, detail: describeUnknownValue({ ...entry, fallbackUsed }) });
}

/** Applies one rule to one event. Pure: the same event always yields the same plan. */
export function planRule(
  rule: CompiledRule,
  event: ChangeEvent,
  targets: PurgeTargets,
  unknown: UnknownValue[],
  options: PlanOptions = {},
): RuleOutcome {
  if (!rule.operations.has(event.op)) {
    return {
      rule: rule.name,
      index: rule.index,
      purged: false,
      reason: `${opNames[event.op]} is not in on: [${rule.source.on.join(', ')}]`,
    };
  }
  if (event.op === 'u' && rule.changed && !rule.changed.some((column) => columnChanged(event, column))) {
    return {
      rule: rule.name,
      index: rule.index,
      purged: false,
      reason: `update changed none of when.changed: [${rule.changed.join(', ')}]`,
    };
  }
  const primary = newCollector(targets, event);
  render(rule, rule.templates, event, primary, options);
  const fallbackUsed = primary.unknown.length > 0 && rule.fallback.length > 0;
  for (const entry of primary.unknown) reportUnknown(unknown, entry, fallbackUsed);
  if (fallbackUsed) {
    const fallback = newCollector(targets, event);
    render(rule, rule.fallback, event, fallback, options);
    for (const entry of fallback.unknown) reportUnknown(unknown, entry, false);
    if (primary.keySides && fallback.keySides) {
      for (const key of fallback.keySides.current) primary.keySides.current.add(key);
      for (const key of fallback.keySides.old) primary.keySides.old.add(key);
    }
  }
  const outcome: RuleOutcome = { rule: rule.name, index: rule.index, purged: true };
  const sides = primary.keySides;
  if (sides && sides.old.size > 0) {
    const oldSideKeys = [...sides.old].filter((key) => !sides.current.has(key));
    if (oldSideKeys.length > 0) outcome.oldSideKeys = oldSideKeys;
  }
  if (primary.ignored.length > 0)
    outcome.ignoredOldValues = primary.ignored.map(({ path, template, column }) => ({
      path,
      template,
      column,
    }));
  return outcome;
}

export function planForRules(
  rules: readonly CompiledRule[],
  event: ChangeEvent,
  options: PlanOptions = {},
): PurgePlan {
  const targets = emptyTargets();
  const unknown: UnknownValue[] = [];
  const outcomes: RuleOutcome[] = [];
  for (const rule of rules) outcomes.push(planRule(rule, event, targets, unknown, options));
  const plan: PurgePlan = { redis: targets.redis, cdn: targets.cdn, rules: outcomes };
  if (unknown.length > 0) plan.unknown = unknown;
  if (isEmptyTargets(targets)) {
    if (outcomes.length === 0) plan.skipped = `no rule for table ${qualifiedTable(event)}`;
    else if (outcomes.every((outcome) => !outcome.purged))
      plan.skipped = outcomes.map((o) => `${o.rule}: ${o.reason ?? ''}`).join('; ');
    else plan.skipped = 'the matching rules derive no entries from this change';
  }
  return plan;
}
