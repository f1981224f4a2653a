import { describe, expect, it } from 'vitest';
import { escapeGlob } from '@walpurge/rules';
import { globToRegExp } from './glob-regexp.js';

describe('globToRegExp', () => {
  it.each<[string, string, boolean]>([
    ['user:*', 'user:1', true],
    ['user:*', 'users:1', false],
    ['user:?', 'user:12', false],
    ['user:?', 'user:1', true],
    ['[abc]x', 'bx', true],
    ['[^abc]x', 'bx', false],
    ['[^abc]x', 'dx', true],
    ['[a-c]x', 'bx', true],
    ['[c-a]x', 'bx', true],
    ['a\\*b', 'a*b', true],
    ['a\\*b', 'axb', false],
    ['a.b', 'axb', false],
    ['(x)+', '(x)+', true],
    ['[\\]]', ']', true],
    ['new\nline*', 'new\nline!', true],
  ])('%j matches %j: %s', (pattern, text, expected) => {
    expect(globToRegExp(pattern).test(text)).toBe(expected);
  });

  it('an escaped hostile value matches only itself', () => {
    for (const value of ['*', '?', '[a-z]', '\\', 'a]b[', '\\*']) {
      const re = globToRegExp(`k:${escapeGlob(value)}:*`);
      expect(re.test(`k:${value}:1`)).toBe(true);
      expect(re.test('k:a:1')).toBe(false);
      expect(re.test('k:zz:1')).toBe(false);
    }
  });
});
