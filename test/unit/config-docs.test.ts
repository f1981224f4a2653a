import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { configJsonSchema } from '@walpurge/config';
import { collectOptionPaths } from './config-option-paths.js';

const docPath = new URL('../../docs/configuration.md', import.meta.url);

describe('docs/configuration.md', () => {
  const doc = readFileSync(docPath, 'utf8');
  const options = collectOptionPaths(configJsonSchema() as Parameters<typeof collectOptionPaths>[0]);

  it('finds the options of every section of the schema (guards the walker itself)', () => {
    const paths = options.map((option) => option.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        'transport',
        'database.url',
        'kafka.sasl.mechanism',
        'rules[].redis.keys',
        'rules[].fallback.cdn.urls',
      ]),
    );
  });

  it('documents every option path of the zod schema', () => {
    const missing = options.map((option) => option.path).filter((path) => !doc.includes(`\`${path}\``));
    expect(missing, `add these options to docs/configuration.md: ${missing.join(', ')}`).toEqual([]);
  });

  it('documents no option that no longer exists', () => {
    const known = new Set(options.map((option) => option.path));
    // Table rows of the reference start with the option path in backticks.
    const documented = [...doc.matchAll(/^\| `([^`]+)` \|/gm)].map((match) => match[1] as string);
    const optionRows = documented.filter((path) => /^[$a-z]/i.test(path) && !/^[A-Z_]+$/.test(path));
    const stale = optionRows.filter((path) => !known.has(path));
    expect(stale, `remove or rename in docs/configuration.md: ${stale.join(', ')}`).toEqual([]);
  });
});
