import type { ChangeEvent } from '@walpurge/protocol';
import type { CompiledRules } from '@walpurge/rules';

/** Names of the rules that purge something for this event: what `dlq --rule` selects on. */
export function matchedRuleNames(rules: CompiledRules, event: ChangeEvent): string[] {
  return rules
    .planPurges(event)
    .rules.filter((outcome) => outcome.purged)
    .map((outcome) => outcome.rule);
}
