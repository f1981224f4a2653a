/**
 * docs/architecture.md stays true: the files and tests it names exist (each proof is a real test),
 * its links reach existing headings, and the config options it names exist.
 */
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { anchorOf, configKeyExists, configKeyReferences, readRepoFile, repoPath } from './workspace.js';

const doc = readRepoFile('docs/architecture.md');

describe('docs/architecture.md', () => {
  it('names only files that exist', () => {
    const paths = [...doc.matchAll(/`((?:deploy|docs|examples|test|packages|services)\/[^`\s]*)`/g)].map(
      (match) => match[1] ?? '',
    );
    expect(paths.length).toBeGreaterThan(10);
    for (const path of paths) expect(existsSync(repoPath(path)), path).toBe(true);
  });

  it('offers as proof only files that hold tests', () => {
    const proofs = [...doc.matchAll(/`([^`\s]+\.int\.test\.ts)`/g)].map((match) => match[1] ?? '');
    expect(proofs.length).toBeGreaterThan(5);
    for (const proof of proofs) expect(readRepoFile(proof), proof).toMatch(/\bit\(/);
  });

  it('links only to documents and headings that exist', () => {
    const links = [...doc.matchAll(/\]\(([\w.-]+\.md)(?:#([\w-]+))?\)/g)];
    expect(links.length).toBeGreaterThan(3);
    for (const [, file = '', anchor] of links) {
      const target = readRepoFile(`docs/${file}`);
      if (!anchor) continue;
      const anchors = [...target.matchAll(/^#+ (.+)$/gm)].map((match) => anchorOf(match[1] ?? ''));
      expect(anchors, `${file}#${anchor}`).toContain(anchor);
    }
  });

  it('names only config options walpurge.yaml has', () => {
    const references = configKeyReferences(doc);
    expect(references.length).toBeGreaterThan(0);
    for (const reference of references) expect(configKeyExists(reference), reference).toBe(true);
  });
});
