import { escapeGlob, fixedGlobPrefix } from '@walpurge/rules';
import { globToRegExp } from './glob-regexp.js';

/** What one sweep checks keys against: all patterns pending in its window, compiled once. */
export interface CombinedMatcher {
  /** SCAN MATCH argument: the patterns' common literal prefix, so the server filters what it can. */
  match: string;
  test(key: string): boolean;
}

/**
 * One regular expression for many Redis globs (an alternation of their translations, anchored
 * once), plus the longest literal prefix all of them share for a server-side SCAN MATCH. Patterns
 * arrive glob-escaped (row values can hold `*`, `[` …); globToRegExp honours those escapes.
 */
export function combinedMatcher(patterns: readonly string[]): CombinedMatcher {
  const unique = [...new Set(patterns)];
  const alternatives = unique.map((pattern) => globToRegExp(pattern).source.slice(1, -1));
  const regexp = new RegExp(`^(?:${alternatives.join('|')})$`);
  const prefixes = unique.map(fixedGlobPrefix);
  let common = prefixes[0] ?? '';
  for (const prefix of prefixes.slice(1)) {
    let i = 0;
    while (i < common.length && i < prefix.length && common[i] === prefix[i]) i += 1;
    common = common.slice(0, i);
  }
  // Compared per UTF-16 unit, two emoji can share half a surrogate pair; a lone half would go to
  // the server as U+FFFD and the MATCH would find nothing. Back off to a whole code point.
  const last = common.charCodeAt(common.length - 1);
  if (last >= 0xd800 && last <= 0xdbff) common = common.slice(0, -1);
  return { match: `${escapeGlob(common)}*`, test: (key) => regexp.test(key) };
}
