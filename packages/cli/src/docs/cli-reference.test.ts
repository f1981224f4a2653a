import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { commands } from '../cli.js';
import { EXIT_CODES_HELP } from '../command.js';
import { cliDocPath, generatedPart, renderCliReference } from './cli-reference.js';

const doc = readFileSync(cliDocPath, 'utf8');

describe('docs/cli.md', () => {
  it("holds every command's --help exactly as the program prints it", () => {
    expect(
      generatedPart(doc),
      'regenerate: pnpm exec tsx --conditions=@walpurge/source packages/cli/src/bin/write-cli-docs.ts',
    ).toBe(renderCliReference());
  });

  it('documents the exit codes and every environment variable an option reads', () => {
    expect(doc).toContain(EXIT_CODES_HELP);
    const prose = doc.replace(generatedPart(doc) ?? '', '');
    const envVars = new Set(
      commands.flatMap((command) => Object.values(command.options).flatMap((option) => option.env ?? [])),
    );
    const missing = [...envVars].filter((name) => !prose.includes(`\`${name}\``));
    expect(missing, 'describe these variables in the environment table of docs/cli.md').toEqual([]);
  });
});
