import { describe, expect, it } from 'vitest';
import { formatPath, Rule } from '@walpurge/config';
import { compileRules } from './compile-rules.js';
import { ruleWarnings } from './rule-warnings.js';
import type { ProblemAt } from './validate-schema.js';

type RuleInput = Parameters<typeof Rule.parse>[0];
const problemAt: ProblemAt = (path, message) => ({ path: formatPath(path), message });
const warningsFor = (...input: RuleInput[]) =>
  ruleWarnings(compileRules(input.map((r) => Rule.parse(r))).rules, problemAt);

describe('ruleWarnings: CDN prefixes ending in a row value', () => {
  it('warns about each prefix template whose last element is a placeholder, main and fallback', () => {
    const warnings = warningsFor(
      {
        table: 'posts',
        name: 'posts',
        cdn: {
          prefixes: [
            'https://example.com/p/{slug}',
            'https://example.com/p/{slug}/',
            'https://example.com/a/{old.author}',
          ],
        },
        fallback: { cdn: { prefixes: ['https://example.com/{id}'] } },
      },
      { table: 'pages', cdn: { prefixes: ['https://example.com/x/{new.id}'] } },
    );
    expect(warnings.map((w) => w.path)).toEqual([
      'rules[0].cdn.prefixes[0]',
      'rules[0].cdn.prefixes[2]',
      'rules[0].fallback.cdn.prefixes[0]',
      'rules[1].cdn.prefixes[0]',
    ]);
    expect(warnings[0]?.message).toMatch(/^rule 'posts': the prefix ends in the row value \{slug\}/);
    expect(warnings[0]?.message).toContain("end it with '/' ('https://example.com/p/{slug}/')");
    expect(warnings[1]?.message).toContain('{old.author}');
    // An unnamed rule is named by the path alone.
    expect(warnings[3]?.message).toMatch(/^the prefix ends in the row value \{new\.id\}/);
  });

  it('is silent for prefixes closed by a literal, literal-only prefixes and other target kinds', () => {
    expect(
      warningsFor({
        table: 'posts',
        redis: { keys: ['post:{slug}'], patterns: ['post:{slug}'], tags: ['t-{id}'] },
        cdn: {
          urls: ['https://example.com/p/{slug}'],
          tags: ['post-{id}'],
          prefixes: [
            'https://example.com/p/{slug}/',
            'https://example.com/static/',
            'https://example.com/p/{slug}.html',
          ],
        },
      }),
    ).toEqual([]);
  });
});

describe('ruleWarnings: Redis patterns without a literal start', () => {
  it('warns about patterns that start with a wildcard (every purge scans every key), main and fallback', () => {
    const warnings = warningsFor({
      table: 'users',
      name: 'users',
      redis: { patterns: ['*:{id}', 'user:{id}:*', '{id}:*', '?x:{id}'] },
      fallback: { redis: { patterns: ['*'] } },
    });
    expect(warnings.map((w) => w.path)).toEqual([
      'rules[0].redis.patterns[0]',
      'rules[0].redis.patterns[3]',
      'rules[0].fallback.redis.patterns[0]',
    ]);
    expect(warnings[0]?.message).toBe(
      "rule 'users': the pattern '*:{id}' starts with a wildcard, so each purge scans every key (under redis.keyPrefix) and deletes every key it matches, other rows' and other applications' included; start it with literal text (e.g. 'user:*:{id}')",
    );
  });
});
