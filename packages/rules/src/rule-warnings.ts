import type { ConfigProblem } from '@walpurge/config';
import type { CompiledRule, CompiledTemplate } from './compile.js';
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
 * Warnings that need no database: rules that are valid but probably purge more than intended.
 * Schema-dependent warnings come from validateRulesAgainstSchema.
 */
export function ruleWarnings(rules: readonly CompiledRule[], problemAt: ProblemAt): ConfigProblem[] {
  const warnings: ConfigProblem[] = [];
  for (const rule of rules) {
    for (const template of [...rule.templates, ...rule.fallback]) {
      const warning = openPrefixWarning(rule, template, problemAt);
      if (warning) warnings.push(warning);
    }
  }
  return warnings;
}
