import { describe, expect, it } from 'vitest';
import { compileRules } from '@walpurge/rules';
import { fixedGlobPrefix, urlDirectory } from '@walpurge/rules';
import { planKeySpace } from './key-space.js';

describe('planKeySpace', () => {
  it('widens literal-prefixed Redis templates and never produces a match-everything pattern', () => {
    const rules = compileRules([
      {
        table: 'users',
        on: ['insert', 'update', 'delete', 'truncate'],
        redis: {
          keys: ['user:{id}', 'a*b:{id}', '{email}', 'static'],
          patterns: ['feed:{id}:*', '*:{id}', '?x'],
          tags: ['user-{id}', '{id}'],
          namespaces: [],
        },
      },
    ]).rules;
    const space = planKeySpace(rules);
    expect(space.redis.patterns).toEqual(['user:*', 'a\\*b:*', 'feed:*:*']);
    expect(space.redis.keys).toEqual(['static']);
    expect(space.redis.tagPatterns).toEqual(['user-*']);
    expect(space.unpurgeable.map((item) => item.path)).toEqual([
      'rules[0].redis.keys[2]',
      'rules[0].redis.patterns[1]',
      'rules[0].redis.patterns[2]',
      'rules[0].redis.tags[1]',
    ]);
  });

  it('bumps namespaces as written, or every version matching the widened template; none without a database', () => {
    const rules = compileRules([
      {
        table: 'orders',
        on: ['insert', 'update', 'delete'],
        redis: {
          keys: ['order:{id}'],
          patterns: [],
          tags: [],
          namespaces: ['user:{user_id}', 'orders', 'a*b:{id}', '{user_id}:x', 'user:{user_id}'],
        },
      },
    ]).rules;
    const space = planKeySpace(rules);
    expect(space.redis.patterns).toEqual(['order:*']);
    expect(space.redis.namespaces).toEqual(['orders']);
    expect(space.redis.namespacePatterns).toEqual(['user:*', 'a\\*b:*']);
    expect(space.unpurgeable.map((item) => [item.path, item.reason])).toEqual([
      [
        'rules[0].redis.namespaces[3]',
        'it does not start with literal text, so its key space is everything: re-purge the rows instead (walpurge purge --table public.orders)',
      ],
    ]);
  });

  it('turns templated CDN URLs into a prefix purge of their directory, never a host root', () => {
    expect(urlDirectory('https://x.test/users/')).toBe('https://x.test/users/');
    expect(urlDirectory('https://x.test/users/u')).toBe('https://x.test/users/');
    expect(urlDirectory('https://x.test/search?q=')).toBeUndefined();
    expect(urlDirectory('https://x.test/a/search?q=')).toBe('https://x.test/a/');
    expect(urlDirectory('https://x.test/')).toBeUndefined();
    expect(urlDirectory('https://x.test/u')).toBeUndefined();
    expect(urlDirectory('https://')).toBeUndefined();
    expect(urlDirectory('https://cdn-')).toBeUndefined();
  });

  it('reads the fixed start of a glob', () => {
    expect(fixedGlobPrefix('user:*')).toBe('user:');
    expect(fixedGlobPrefix('a\\*b*')).toBe('a*b');
    expect(fixedGlobPrefix('*x')).toBe('');
    expect(fixedGlobPrefix('[ab]x')).toBe('');
  });
});
