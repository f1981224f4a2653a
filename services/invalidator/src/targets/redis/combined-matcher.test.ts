import { describe, expect, it } from 'vitest';
import { escapeGlob } from '@walpurge/rules';
import { combinedMatcher } from './combined-matcher.js';

describe('combinedMatcher', () => {
  it('matches a key when any pattern matches it, anchored at both ends', () => {
    const matcher = combinedMatcher(['app:user:1:*', 'app:post:?', 'app:item:[ab]']);
    for (const key of ['app:user:1:x', 'app:user:1:', 'app:post:7', 'app:item:a'])
      expect(matcher.test(key)).toBe(true);
    for (const key of ['app:user:10:x', 'xapp:user:1:x', 'app:post:77', 'app:item:c', 'app:user:1'])
      expect(matcher.test(key)).toBe(false);
  });

  it('SCAN MATCH is the common literal prefix of every pattern', () => {
    expect(combinedMatcher(['app:user:1:*', 'app:user:2:*']).match).toBe('app:user:*');
    expect(combinedMatcher(['app:user:*', 'app:post:*']).match).toBe('app:*');
    expect(combinedMatcher(['a:*', 'b:*']).match).toBe('*');
    expect(combinedMatcher(['only:*']).match).toBe('only:*');
  });

  it('escaped row values match only themselves, also in the SCAN MATCH prefix', () => {
    const hostile = ['a*', '[ab]?', 'b\\', 'd]'];
    const matcher = combinedMatcher(hostile.map((v) => `p:user:${escapeGlob(v)}:*`));
    for (const v of hostile) expect(matcher.test(`p:user:${v}:1`)).toBe(true);
    for (const v of ['ab', 'a', 'ax', 'b', 'bx', 'd']) expect(matcher.test(`p:user:${v}:1`)).toBe(false);
    const single = combinedMatcher([`p:${escapeGlob('x*[y')}:*`]);
    expect(single.match).toBe('p:x\\*\\[y:*');
  });
});
