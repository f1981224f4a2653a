import {
  escapeGlob,
  fixedGlobPrefix,
  urlDirectory,
  hasFields,
  literalPrefix,
  wildcardPattern,
  type CompiledRule,
  type CompiledTemplate,
  type TargetKind,
} from '@walpurge/rules';

/**
 * A template whose whole key space cannot be purged wholesale. Never dropped: `walpurge purge --all`
 * prints every one and exits non-zero unless told to accept them.
 */
export interface Unpurgeable {
  rule: string;
  /** Config path, e.g. `rules[0].cdn.tags[0]`. */
  path: string;
  template: string;
  kind: TargetKind;
  /** Set when only this purge target (a CDN driver, `redis`) cannot take the entry. */
  target?: string;
  reason: string;
}

/**
 * Everything the rules can ever derive, as entries that can be purged wholesale. Redis names are
 * logical (the purger adds `redis.keyPrefix`).
 */
export interface KeySpace {
  redis: {
    /** Template without fields: purged as written. */
    keys: string[];
    /** SCAN MATCH patterns, each starting with literal text. */
    patterns: string[];
    tags: string[];
    /** Glob over tag names (`user-*`); the tag sets found by SCAN are purged like tags. */
    tagPatterns: string[];
    /** Namespace without fields: its version is bumped as written. */
    namespaces: string[];
    /** Glob over namespace names (`user:*`); the version keys found by SCAN are bumped. */
    namespacePatterns: string[];
  };
  cdn: { urls: string[]; tags: string[]; prefixes: string[] };
  /** Which template produced which wholesale entry, to report a target that cannot take it. */
  placed: Placed[];
  unpurgeable: Unpurgeable[];
}

export type WholesaleKind = TargetKind | 'redis.tagPatterns' | 'redis.namespacePatterns';

export interface Placed {
  rule: string;
  path: string;
  template: string;
  kind: TargetKind;
  as: WholesaleKind;
  entry: string;
}

/** Where a templated Redis entry goes once its fields are `*`. */
const WIDENED = {
  'redis.keys': 'redis.patterns',
  'redis.patterns': 'redis.patterns',
  'redis.tags': 'redis.tagPatterns',
  'redis.namespaces': 'redis.namespacePatterns',
} as const satisfies Partial<Record<TargetKind, WholesaleKind>>;

/** The text of a field-free template (`{{` already unescaped by the parser). */
function literalText(template: CompiledTemplate): string {
  return template.parsed.parts.map((part) => (part.kind === 'text' ? part.text : '')).join('');
}

/**
 * What "purge the whole key space" honestly means per kind of template:
 * - no field: the entry as written (every kind);
 * - Redis keys and patterns: the template with each field as `*` (`user:{id}` → `user:*`), only
 *   when the result starts with literal text, so it can never match every key;
 * - Redis tags: every tag set whose name matches the tag with fields as `*` (they exist in Redis,
 *   so SCAN can enumerate them), again only with a literal start;
 * - CDN URLs and prefixes: a prefix purge of the URL directory before the first field
 *   (`https://x/users/{id}` → `https://x/users/`), never a host's root;
 * - CDN tags with fields: cannot be enumerated anywhere, so they are unpurgeable;
 * - Redis namespaces: given a fresh version (see purge-all.ts), as written without fields, else
 *   every existing version key whose namespace matches the template with fields as `*` (again only
 *   with a literal start).
 * Everything refused is returned in `unpurgeable` with the reason.
 */
export function planKeySpace(rules: readonly CompiledRule[]): KeySpace {
  const space: KeySpace = {
    redis: { keys: [], patterns: [], tags: [], tagPatterns: [], namespaces: [], namespacePatterns: [] },
    cdn: { urls: [], tags: [], prefixes: [] },
    placed: [],
    unpurgeable: [],
  };
  const lists: Record<WholesaleKind, string[]> = {
    'redis.keys': space.redis.keys,
    'redis.patterns': space.redis.patterns,
    'redis.tags': space.redis.tags,
    'redis.tagPatterns': space.redis.tagPatterns,
    'redis.namespaces': space.redis.namespaces,
    'redis.namespacePatterns': space.redis.namespacePatterns,
    'cdn.urls': space.cdn.urls,
    'cdn.tags': space.cdn.tags,
    'cdn.prefixes': space.cdn.prefixes,
  };
  for (const rule of rules) {
    for (const template of [...rule.templates, ...rule.fallback]) {
      const refuse = (reason: string): void => {
        space.unpurgeable.push({
          rule: rule.name,
          path: template.path,
          template: template.parsed.source,
          kind: template.kind,
          reason,
        });
      };
      const add = (as: WholesaleKind, entry: string): void => {
        const list = lists[as];
        if (!list.includes(entry)) list.push(entry);
        const source = { rule: rule.name, path: template.path, template: template.parsed.source };
        space.placed.push({ ...source, kind: template.kind, as, entry });
      };
      const noLiteralStart = `it does not start with literal text, so its key space is everything: re-purge the rows instead (walpurge purge --table ${rule.table})`;
      if (!hasFields(template)) {
        const text = literalText(template);
        if (template.kind === 'redis.patterns' && fixedGlobPrefix(text) === '') refuse(noLiteralStart);
        else add(template.kind, text);
        continue;
      }
      switch (template.kind) {
        case 'redis.keys':
        case 'redis.patterns':
        case 'redis.tags':
        case 'redis.namespaces': {
          // In a pattern template the literal text is glob syntax already; elsewhere it is escaped.
          const pattern = wildcardPattern(
            template,
            template.kind === 'redis.patterns' ? (t) => t : escapeGlob,
          );
          if (literalPrefix(template) === '' || fixedGlobPrefix(pattern) === '') refuse(noLiteralStart);
          else add(WIDENED[template.kind], pattern);
          break;
        }
        case 'cdn.urls':
        case 'cdn.prefixes': {
          const directory = urlDirectory(literalPrefix(template));
          if (directory === undefined)
            refuse(
              `the literal text before its first field is not a URL directory below a host's root, and a prefix purge of the whole site is not done on your behalf: re-purge the rows (walpurge purge --table ${rule.table}) or purge the site in the CDN`,
            );
          else add('cdn.prefixes', directory);
          break;
        }
        case 'cdn.tags':
          refuse(
            `CDN tags derived from rows cannot be enumerated: re-purge the rows (walpurge purge --table ${rule.table}) or purge the site in the CDN`,
          );
          break;
      }
    }
  }
  return space;
}
