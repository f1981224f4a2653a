import type { Rule } from '@walpurge/config';
import type { ChangeEvent } from '@walpurge/protocol';
import { qualifiedTable } from '@walpurge/protocol';
import { compileRule, type CompiledRule } from './compile.js';
import { planForRules, type PlanOptions, type PurgePlan } from './plan.js';

/** Rules ready to apply, indexed by table so an event only looks at its own table's rules. */
export interface CompiledRules {
  readonly rules: readonly CompiledRule[];
  /** Qualified names of every table a rule watches. */
  tables(): string[];
  rulesFor(table: string): readonly CompiledRule[];
  /** Which entries one row change makes stale. Pure and deterministic. */
  planPurges(event: ChangeEvent): PurgePlan;
}

/** `options.cdnPrefixPurge`: whether the configured CDN can purge prefixes (see truncate-safety.ts). */
export function compileRules(rules: readonly Rule[], options: PlanOptions = {}): CompiledRules {
  const compiled = rules.map((rule, index) => compileRule(rule, index));
  const byTable = new Map<string, CompiledRule[]>();
  for (const rule of compiled) {
    const list = byTable.get(rule.table) ?? [];
    list.push(rule);
    byTable.set(rule.table, list);
  }
  return {
    rules: compiled,
    tables: () => [...byTable.keys()],
    rulesFor: (table) => byTable.get(table) ?? [],
    planPurges: (event) => planForRules(byTable.get(qualifiedTable(event)) ?? [], event, options),
  };
}
