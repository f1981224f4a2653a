import type { ConfigProblem } from '@walpurge/config';
import type { CompiledRule, CompiledTemplate } from './compile.js';
import { hasFields, literalPrefix } from './render.js';
import type { ProblemAt } from './validate-schema.js';

/**
 * `scheme://host` followed by the end of the host (`/`, `?` or `#`): the part a row value must not
 * reach. A value in the scheme or host (`{page_url}`, `https://{tenant}.x.test/`, `https://x.test{path}`)
 * would be percent-encoded into something that is no URL at all, or choose which site is purged.
 */
const LITERAL_ORIGIN = /^https?:\/\/[^/?#{}\s]+[/?#]/i;
const LITERAL_URL = /^https?:\/\/[^/?#{}\s]+([/?#]\S*)?$/i;

function literalOrigin(template: CompiledTemplate): boolean {
  if (!hasFields(template)) return LITERAL_URL.test(template.parsed.source);
  return LITERAL_ORIGIN.test(literalPrefix(template));
}

/**
 * CDN `urls` and `prefixes` must start with a literal `http(s)://host/`: validate and start refuse
 * the others, since every URL they render would be refused by the CDN drivers (a permanent error
 * per event) or address a host chosen by the data.
 */
export function cdnUrlTemplateProblems(
  rules: readonly CompiledRule[],
  problemAt: ProblemAt,
): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const rule of rules) {
    for (const template of [...rule.templates, ...rule.fallback]) {
      if (template.kind !== 'cdn.urls' && template.kind !== 'cdn.prefixes') continue;
      if (literalOrigin(template)) continue;
      const named = rule.source.name === undefined ? '' : `rule '${rule.source.name}': `;
      problems.push(
        problemAt(
          template.segments,
          `${named}'${template.parsed.source}' must start with a literal http:// or https:// scheme and host followed by '/' (e.g. 'https://shop.example.com/p/{id}'): row values are percent-encoded, so a value cannot supply the scheme or the host`,
        ),
      );
    }
  }
  return problems;
}
