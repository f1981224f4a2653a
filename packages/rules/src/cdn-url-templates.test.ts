import { describe, expect, it } from 'vitest';
import { formatPath, Rule } from '@walpurge/config';
import { cdnUrlTemplateProblems } from './cdn-url-templates.js';
import { compileRules } from './compile-rules.js';

type RuleInput = Parameters<typeof Rule.parse>[0];
const problemAt = (path: ReadonlyArray<PropertyKey>, message: string) => ({
  path: formatPath(path),
  message,
});
const check = (...input: RuleInput[]) =>
  cdnUrlTemplateProblems(compileRules(input.map((r) => Rule.parse(r))).rules, problemAt).map((p) => p.path);

describe('cdnUrlTemplateProblems', () => {
  it('accepts urls and prefixes that start with a literal scheme://host/', () => {
    expect(
      check({
        table: 'users',
        cdn: {
          urls: [
            'https://ex.com/u/{id}',
            'http://ex.com:8080/u?id={id}',
            'https://ex.com',
            'https://ex.com/all',
          ],
          prefixes: ['https://ex.com/t/{team}/'],
          tags: ['{anything}'],
        },
        fallback: { cdn: { prefixes: ['https://ex.com/u/'] } },
      }),
    ).toEqual([]);
  });

  it('refuses a value before or inside the host, a missing scheme, and a value right after the host', () => {
    expect(
      check({
        table: 'pages',
        name: 'pages',
        cdn: {
          urls: [
            '{page_url}',
            'https://{tenant}.ex.com/p',
            'ex.com/p/{id}',
            'https://ex.com{path}',
            'ftp://ex.com/{id}',
          ],
          prefixes: ['{scheme}://ex.com/'],
        },
        fallback: { cdn: { urls: ['https://{host}/'] } },
      }),
    ).toEqual([
      'rules[0].cdn.urls[0]',
      'rules[0].cdn.urls[1]',
      'rules[0].cdn.urls[2]',
      'rules[0].cdn.urls[3]',
      'rules[0].cdn.urls[4]',
      'rules[0].cdn.prefixes[0]',
      'rules[0].fallback.cdn.urls[0]',
    ]);
  });

  it('names the rule and the fix', () => {
    const [problem] = cdnUrlTemplateProblems(
      compileRules([Rule.parse({ table: 'pages', name: 'pages', cdn: { urls: ['{page_url}'] } })]).rules,
      problemAt,
    );
    expect(problem?.message).toMatch(
      /^rule 'pages': '\{page_url\}' must start with a literal http:\/\/ or https:\/\//,
    );
  });
});
