/**
 * Redis glob syntax (SCAN MATCH, KEYS) gives `*`, `?`, `[`, `]` and `\` a meaning. A row value put
 * into a pattern must match only itself, or a value like `*` would purge every neighbouring key.
 */
const GLOB_SPECIAL = /[*?[\]\\]/g;

export function escapeGlob(value: string): string {
  return value.replace(GLOB_SPECIAL, (ch) => `\\${ch}`);
}

/** Characters of a Redis glob before its first unescaped wildcard: what SCAN MATCH is anchored by. */
export function fixedGlobPrefix(pattern: string): string {
  let fixed = '';
  for (let i = 0; i < pattern.length; i += 1) {
    const ch = pattern[i] as string;
    if (ch === '\\' && i + 1 < pattern.length) {
      fixed += pattern[i + 1] as string;
      i += 1;
    } else if (ch === '*' || ch === '?' || ch === '[') return fixed;
    else fixed += ch;
  }
  return fixed;
}
