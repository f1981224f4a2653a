import type { CdnConfig, ConfigProblem } from '@walpurge/config';
import type { CompiledRule, CompiledTemplate } from './compile.js';
import { escapeGlob, fixedGlobPrefix } from './glob.js';
import { hasFields, literalPrefix, wildcardPattern } from './render.js';
import { urlDirectory } from './url-value.js';
import type { ProblemAt } from './validate-schema.js';

/**
 * A truncate removes every row, so every entry a rule derives from any row is stale, and there is
 * no row to render a template from. Each template is purged as one entry that covers all rows:
 * - no field: purged as written;
 * - a Redis key or pattern that starts with literal text: that text with every field as `*`
 *   (`user:{id}:posts` → `user:*:posts`), never a bare `*` (a template starting with a field);
 * - a CDN url or prefix whose literal start holds a URL directory below the host's root: a CDN
 *   prefix purge of that directory (`https://x.test/p/{slug}` → prefix `https://x.test/p/`; never
 *   the site's root, never a partial segment), when every configured CDN driver can purge prefixes.
 * Anything else (tags or namespaces with a field, keys starting with a field, CDN urls without a literal host, or
 * a CDN that cannot purge prefixes) is not truncate-safe: the rule's fallback must cover it, or the
 * rule must leave truncate out of `on`. validate and start refuse the rest (truncateProblems).
 */
export type TruncateTarget =
  | { section: 'redis'; kind: 'keys' | 'patterns' | 'tags' | 'namespaces'; text: string }
  | { section: 'cdn'; kind: 'urls' | 'tags' | 'prefixes'; text: string };

export interface TruncateOptions {
  /** Whether every configured CDN driver can purge by prefix (default true: no CDN, Cloudflare, CloudFront). */
  cdnPrefixPurge?: boolean;
}

/** Drivers that can purge by prefix (the others' support is in services/invalidator create-purgers). */
export function cdnSupportsPrefixes(cdn: CdnConfig | undefined): boolean {
  return cdn?.fastly === undefined && cdn?.http === undefined;
}

/**
 * The URL directory of the template's literal start (`https://x.test/p/{slug}` → `https://x.test/p/`),
 * never a host's root nor a partial path segment (`https://x.test/p{id}` would also cover /pricing).
 */
function cdnPrefixOf(template: CompiledTemplate): string | undefined {
  return urlDirectory(literalPrefix(template));
}

/** What a truncate purges for one template, or undefined when it cannot be purged (see above). */
export function truncateTarget(
  template: CompiledTemplate,
  options: TruncateOptions = {},
): TruncateTarget | undefined {
  const [section, kind] = template.kind.split('.') as ['redis', 'keys'] | ['cdn', 'urls'];
  if (!hasFields(template)) {
    const text = template.parsed.parts.map((part) => (part.kind === 'text' ? part.text : '')).join('');
    return { section, kind, text } as TruncateTarget;
  }
  if (template.kind === 'redis.keys' || template.kind === 'redis.patterns') {
    if (literalPrefix(template) === '') return undefined;
    const escape = template.kind === 'redis.keys' ? escapeGlob : (text: string) => text;
    const pattern = wildcardPattern(template, escape);
    // A pattern template's literal text is glob syntax: `*:{id}` would widen to `*:*`, nearly every key.
    if (fixedGlobPrefix(pattern) === '') return undefined;
    return { section: 'redis', kind: 'patterns', text: pattern };
  }
  if (template.kind === 'cdn.urls' || template.kind === 'cdn.prefixes') {
    const prefix = cdnPrefixOf(template);
    if (prefix === undefined || options.cdnPrefixPurge === false) return undefined;
    return { section: 'cdn', kind: 'prefixes', text: prefix };
  }
  return undefined;
}

function whyNot(template: CompiledTemplate, options: TruncateOptions): string {
  switch (template.kind) {
    case 'redis.keys':
      return 'starts with a row value, so it cannot be widened to a pattern of all rows';
    case 'redis.patterns':
      return 'starts with a wildcard or a row value, so it cannot be widened to a pattern of all rows';
    case 'redis.tags':
    case 'cdn.tags':
      return 'is a tag made from a row value, and tags cannot be widened to all rows';
    case 'redis.namespaces':
      return 'is a namespace made from a row value, and namespaces cannot be widened to all rows';
    default:
      return cdnPrefixOf(template) === undefined || options.cdnPrefixPurge !== false
        ? "does not start with a literal URL directory below the host's root (scheme://host/dir/), so it cannot be widened to a prefix purge without purging the whole site"
        : 'would be widened to a prefix purge, which a configured CDN driver (fastly or http) cannot do';
  }
}

/**
 * Rules that handle truncate but cannot purge what a truncate makes stale. A rule passes when each
 * template is truncate-safe, or when its fallback is (the fallback is then purged on truncate).
 * Problems are located at each unsafe template and say what to add.
 */
export function truncateProblems(
  rules: readonly CompiledRule[],
  problemAt: ProblemAt,
  options: TruncateOptions = {},
): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const rule of rules) {
    if (!rule.operations.has('t')) continue;
    const unsafe = rule.templates.filter((template) => !truncateTarget(template, options));
    const unsafeFallback = rule.fallback.filter((template) => !truncateTarget(template, options));
    if (unsafe.length === 0 || (rule.fallback.length > 0 && unsafeFallback.length === 0)) continue;
    const named = rule.source.name === undefined ? '' : `rule '${rule.source.name}': `;
    const fix =
      rule.fallback.length === 0
        ? `add a fallback without row values (e.g. fallback: { redis: { patterns: ['prefix:*'] } }) that covers every entry of ${rule.table}, or remove truncate from on (a TRUNCATE of ${rule.table} then purges nothing for this rule)`
        : `make every fallback entry truncate-safe, or remove truncate from on (a TRUNCATE of ${rule.table} then purges nothing for this rule)`;
    for (const template of unsafe)
      problems.push(
        problemAt(
          template.segments,
          `${named}on truncate '${template.parsed.source}' ${whyNot(template, options)}; ${fix}`,
        ),
      );
    for (const template of unsafeFallback)
      problems.push(
        problemAt(
          template.segments,
          `${named}on truncate the fallback '${template.parsed.source}' ${whyNot(template, options)}; ${fix}`,
        ),
      );
  }
  return problems;
}
