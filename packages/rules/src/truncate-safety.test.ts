import { describe, expect, it } from 'vitest';
import { formatPath, Rule } from '@walpurge/config';
import { compileRules } from './compile-rules.js';
import { truncateProblems } from './truncate-safety.js';

type RuleInput = Parameters<typeof Rule.parse>[0];
const problemAt = (path: ReadonlyArray<PropertyKey>, message: string) => ({
  path: formatPath(path),
  message,
});
const check = (options: { cdnPrefixPurge?: boolean }, ...input: RuleInput[]) =>
  truncateProblems(compileRules(input.map((r) => Rule.parse(r))).rules, problemAt, options).map(
    (p) => `${p.path}: ${p.message}`,
  );

describe('truncateProblems', () => {
  it('accepts rules whose every entry a truncate can purge, or whose fallback can', () => {
    expect(
      check(
        {},
        {
          table: 'users',
          redis: { keys: ['user:{id}', 'all'], patterns: ['u:{id}:*'], tags: ['users'] },
          cdn: { urls: ['https://ex.com/u/{id}'], prefixes: ['https://ex.com/t/{team}/'], tags: ['users'] },
        },
        { table: 'users', redis: { tags: ['user-{id}'] }, fallback: { redis: { patterns: ['user:*'] } } },
        { table: 'users', on: ['insert', 'update', 'delete'], redis: { keys: ['{email}'] } },
      ),
    ).toEqual([]);
  });

  it('refuses tags, keys starting with a value and CDN urls without a literal host, naming the rule and the fix', () => {
    expect(
      check(
        {},
        {
          table: 'users',
          name: 'users',
          redis: { keys: ['{email}'], tags: ['user-{id}'] },
          cdn: { tags: ['u-{id}'], urls: ['https://{host}/x'] },
        },
      ),
    ).toEqual([
      "rules[0].redis.keys[0]: rule 'users': on truncate '{email}' starts with a row value, so it cannot be widened to a pattern of all rows; add a fallback without row values (e.g. fallback: { redis: { patterns: ['prefix:*'] } }) that covers every entry of public.users, or remove truncate from on (a TRUNCATE of public.users then purges nothing for this rule)",
      "rules[0].redis.tags[0]: rule 'users': on truncate 'user-{id}' is a tag made from a row value, and tags cannot be widened to all rows; add a fallback without row values (e.g. fallback: { redis: { patterns: ['prefix:*'] } }) that covers every entry of public.users, or remove truncate from on (a TRUNCATE of public.users then purges nothing for this rule)",
      "rules[0].cdn.urls[0]: rule 'users': on truncate 'https://{host}/x' does not start with a literal URL directory below the host's root (scheme://host/dir/), so it cannot be widened to a prefix purge without purging the whole site; add a fallback without row values (e.g. fallback: { redis: { patterns: ['prefix:*'] } }) that covers every entry of public.users, or remove truncate from on (a TRUNCATE of public.users then purges nothing for this rule)",
      "rules[0].cdn.tags[0]: rule 'users': on truncate 'u-{id}' is a tag made from a row value, and tags cannot be widened to all rows; add a fallback without row values (e.g. fallback: { redis: { patterns: ['prefix:*'] } }) that covers every entry of public.users, or remove truncate from on (a TRUNCATE of public.users then purges nothing for this rule)",
    ]);
  });

  it('refuses a pattern whose literal start is itself a wildcard: widening *:{id} would purge nearly every key', () => {
    expect(check({}, { table: 'users', redis: { patterns: ['*:{id}', '?x:{id}:*', '[ab]:{id}'] } })).toEqual([
      "rules[0].redis.patterns[0]: on truncate '*:{id}' starts with a wildcard or a row value, so it cannot be widened to a pattern of all rows; add a fallback without row values (e.g. fallback: { redis: { patterns: ['prefix:*'] } }) that covers every entry of public.users, or remove truncate from on (a TRUNCATE of public.users then purges nothing for this rule)",
      "rules[0].redis.patterns[1]: on truncate '?x:{id}:*' starts with a wildcard or a row value, so it cannot be widened to a pattern of all rows; add a fallback without row values (e.g. fallback: { redis: { patterns: ['prefix:*'] } }) that covers every entry of public.users, or remove truncate from on (a TRUNCATE of public.users then purges nothing for this rule)",
      "rules[0].redis.patterns[2]: on truncate '[ab]:{id}' starts with a wildcard or a row value, so it cannot be widened to a pattern of all rows; add a fallback without row values (e.g. fallback: { redis: { patterns: ['prefix:*'] } }) that covers every entry of public.users, or remove truncate from on (a TRUNCATE of public.users then purges nothing for this rule)",
    ]);
  });

  it('never widens a CDN url to a prefix of the whole site or of a partial path segment', () => {
    expect(
      check(
        {},
        {
          table: 'pages',
          cdn: {
            urls: ['https://shop.test/{slug}', 'https://shop.test/p{id}', 'https://shop.test/{lang}/p/{id}'],
          },
        },
      ).map((line) => line.slice(0, line.indexOf(';'))),
    ).toEqual([
      "rules[0].cdn.urls[0]: on truncate 'https://shop.test/{slug}' does not start with a literal URL directory below the host's root (scheme://host/dir/), so it cannot be widened to a prefix purge without purging the whole site",
      "rules[0].cdn.urls[1]: on truncate 'https://shop.test/p{id}' does not start with a literal URL directory below the host's root (scheme://host/dir/), so it cannot be widened to a prefix purge without purging the whole site",
      "rules[0].cdn.urls[2]: on truncate 'https://shop.test/{lang}/p/{id}' does not start with a literal URL directory below the host's root (scheme://host/dir/), so it cannot be widened to a prefix purge without purging the whole site",
    ]);
  });

  it('refuses a fallback that is itself not truncate-safe, and CDN urls when the CDN cannot purge prefixes', () => {
    expect(
      check(
        { cdnPrefixPurge: false },
        { table: 'users', redis: { tags: ['user-{id}'] }, fallback: { redis: { tags: ['team-{team}'] } } },
        { table: 'users', cdn: { urls: ['https://ex.com/u/{id}'] } },
      ).map((line) => line.slice(0, line.indexOf(';'))),
    ).toEqual([
      "rules[0].redis.tags[0]: on truncate 'user-{id}' is a tag made from a row value, and tags cannot be widened to all rows",
      "rules[0].fallback.redis.tags[0]: on truncate the fallback 'team-{team}' is a tag made from a row value, and tags cannot be widened to all rows",
      "rules[1].cdn.urls[0]: on truncate 'https://ex.com/u/{id}' would be widened to a prefix purge, which a configured CDN driver (fastly or http) cannot do",
    ]);
  });
});
