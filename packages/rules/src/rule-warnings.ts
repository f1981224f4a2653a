import type { ConfigProblem } from '@walpurge/config';
import type { CompiledRule, CompiledTemplate } from './compile.js';
import { fixedGlobPrefix } from './glob.js';
import type { ProblemAt } from './validate-schema.js';

/**
 * A CDN prefix purges every URL that starts with it, so a prefix ending in a row value is open
 * ended: `https://example.com/p/{slug}` with slug `a` also purges `/p/ab`, `/p/about`, … — more
 * than the row's pages, but never fewer. It is allowed (it may be what was meant), hence a warning;
 * a trailing `/` (or any literal that ends the value) closes it.
 */
function openPrefixWarning(rule: CompiledRule, template: CompiledTemplate, problemAt: ProblemAt) {
  if (template.kind !== 'cdn.prefixes') return undefined;
  const last = template.parsed.parts[template.parsed.parts.length - 1];
  if (last?.kind !== 'field') return undefined;
  const ref = last.side === 'row' ? `{${last.column}}` : `{${last.side}.${last.column}}`;
  const named = rule.source.name === undefined ? '' : `rule '${rule.source.name}': `;
  return problemAt(
    template.segments,
    `${named}the prefix ends in the row value ${ref}, so it also purges URLs of other rows whose value starts the same way (a value 'a' purges '…/ab' too); end it with '/' ('${template.parsed.source}/') if it should only cover this row's URLs`,
  );
}

/**
 * A pattern whose literal start is itself a wildcard (`*:{id}`, a fallback `*`) is anchored by
 * nothing: each purge SCANs the whole keyspace and UNLINKs whatever matches, whoever wrote it. Row
 * values are escaped, so this is never caused by data; it is what the rule says, hence a warning.
 * A template that starts with a row value is anchored by that (escaped) value.
 */
function unanchoredPatternWarning(rule: CompiledRule, template: CompiledTemplate, problemAt: ProblemAt) {
  if (template.kind !== 'redis.patterns') return undefined;
  const first = template.parsed.parts[0];
  if (first?.kind !== 'text' || fixedGlobPrefix(first.text) !== '') return undefined;
  const named = rule.source.name === undefined ? '' : `rule '${rule.source.name}': `;
  return problemAt(
    template.segments,
    `${named}the pattern '${template.parsed.source}' starts with a wildcard, so each purge scans every key (under redis.keyPrefix) and deletes every key it matches, other rows' and other applications' included; start it with literal text (e.g. 'user:*:{id}')`,
  );
}

/**
 * Warnings that need no database: rules that are valid but probably purge more than intended.
 * Schema-dependent warnings come from validateRulesAgainstSchema.
 */
export function ruleWarnings(rules: readonly CompiledRule[], problemAt: ProblemAt): ConfigProblem[] {
  const warnings: ConfigProblem[] = [];
  for (const rule of rules) {
    for (const template of [...rule.templates, ...rule.fallback]) {
      for (const warning of [
        openPrefixWarning(rule, template, problemAt),
        unanchoredPatternWarning(rule, template, problemAt),
      ])
        if (warning) warnings.push(warning);
    }
  }
  return warnings;
}
