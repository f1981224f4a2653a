import { describe, expect, it } from 'vitest';
import { escapeGlob } from './glob.js';
import { tagSetKey } from './tag-set.js';

/** A reimplementation of Redis' stringmatchlen for the characters we escape, to check round trips. */
function redisGlobMatch(pattern: string, text: string): boolean {
  const re = pattern.replace(
    /\\(.)|([*?])|(\[)|(\])|([^\\*?[\]]+)/g,
    (_m, escaped: string | undefined, wild, open, close, plain: string | undefined) => {
      if (escaped !== undefined) return escaped.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
      if (wild === '*') return '.*';
      if (wild === '?') return '.';
      if (open) return '[';
      if (close) return ']';
      return (plain ?? '').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    },
  );
  return new RegExp(`^${re}$`, 's').test(text);
}

describe('escapeGlob', () => {
  it.each(['*', '?', '[', ']', '\\', 'a*b?c[d]e\\f', 'plain:value'])(
    'an escaped %j matches only itself',
    (value) => {
      const pattern = escapeGlob(value);
      expect(redisGlobMatch(pattern, value)).toBe(true);
      expect(redisGlobMatch(pattern, `${value}x`)).toBe(false);
      expect(redisGlobMatch(pattern, 'other')).toBe(false);
    },
  );

  it('escapes exactly * ? [ ] \\', () => {
    expect(escapeGlob('a*b?c[d]e\\f-^')).toBe('a\\*b\\?c\\[d\\]e\\\\f-^');
  });
});

describe('tagSetKey', () => {
  it('puts the prefix before the tag segment', () => {
    expect(tagSetKey('app:', 'user-1')).toBe('app:tag:user-1');
    expect(tagSetKey('', 'x')).toBe('tag:x');
  });
});
