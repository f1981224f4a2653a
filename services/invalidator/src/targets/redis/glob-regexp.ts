/**
 * Redis glob (stringmatchlen) as a RegExp, so one SCAN pass can be checked against many patterns
 * client-side instead of one full keyspace SCAN per pattern. Semantics follow Redis: `*`, `?`,
 * `[abc]`, `[^abc]`, `[a-z]`, and `\x` for a literal x (also inside brackets).
 */
const REGEXP_SPECIAL = /[.*+?^${}()|[\]\\/-]/g;
const lit = (ch: string): string => ch.replace(REGEXP_SPECIAL, '\\$&');

export function globToRegExp(pattern: string): RegExp {
  let out = '';
  let i = 0;
  while (i < pattern.length) {
    const ch = pattern[i] as string;
    if (ch === '*') {
      out += '[\\s\\S]*';
      i += 1;
    } else if (ch === '?') {
      out += '[\\s\\S]';
      i += 1;
    } else if (ch === '\\') {
      // A trailing backslash matches itself, as in Redis.
      out += lit(i + 1 < pattern.length ? (pattern[i + 1] as string) : '\\');
      i += 2;
    } else if (ch === '[') {
      i += 1;
      let negate = false;
      if (pattern[i] === '^') {
        negate = true;
        i += 1;
      }
      const members: string[] = [];
      while (i < pattern.length && pattern[i] !== ']') {
        let start = pattern[i] as string;
        if (start === '\\' && i + 1 < pattern.length) {
          i += 1;
          start = pattern[i] as string;
        }
        if (pattern[i + 1] === '-' && i + 2 < pattern.length && pattern[i + 2] !== ']') {
          let end = pattern[i + 2] as string;
          let next = i + 3;
          if (end === '\\' && i + 3 < pattern.length) {
            end = pattern[i + 3] as string;
            next = i + 4;
          }
          const [lo, hi] = start <= end ? [start, end] : [end, start];
          members.push(`${lit(lo)}-${lit(hi)}`);
          i = next;
        } else {
          members.push(lit(start));
          i += 1;
        }
      }
      i += 1; // the closing ']' (or the end of the pattern)
      out +=
        members.length === 0 ? (negate ? '[\\s\\S]' : '(?!)') : `[${negate ? '^' : ''}${members.join('')}]`;
    } else {
      out += lit(ch);
      i += 1;
    }
  }
  return new RegExp(`^${out}$`);
}
