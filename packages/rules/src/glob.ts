/**
 * Redis glob syntax (SCAN MATCH, KEYS) gives `*`, `?`, `[`, `]` and `\` a meaning. A row value put
 * into a pattern must match only itself, or a value like `*` would purge every neighbouring key.
 */
const GLOB_SPECIAL = /[*?[\]\\]/g;

export function escapeGlob(value: string): string {
  return value.replace(GLOB_SPECIAL, (ch) => `\\${ch}`);
}
