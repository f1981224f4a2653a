/**
 * docs/postgresql.md's version table stays backed by tests: every row names test files that `npm test`
 * runs on every version (test/bin/pg-version-subset.ts) and test names those files contain, and its
 * columns are the versions the test environment can run.
 */
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { TEST_POSTGRES_MAJORS } from '@walpurge/testing';
import { PG_VERSION_SUBSET } from '../bin/pg-version-subset.js';
import { readRepoFile, repoPath } from './deploy/workspace.js';

const doc = readRepoFile('docs/postgresql.md');
const section = doc.slice(
  doc.indexOf('## What differs by version'),
  doc.indexOf('## Testing on other versions'),
);
const rows = section
  .split('\n')
  .filter((line) => line.startsWith('|') && !/^\|\s*-/.test(line))
  .map((line) =>
    line
      .slice(1, -1)
      .split('|')
      .map((cell) => cell.trim()),
  );
const [header = [], ...body] = rows;

/** `path` "name fragment" "another" `path2` "…" → [{ file, names }] */
function testReferences(cell: string): { file: string; names: string[] }[] {
  const refs: { file: string; names: string[] }[] = [];
  for (const match of cell.matchAll(/`([^`]+)`|"([^"]+)"/g)) {
    if (match[1] !== undefined) refs.push({ file: match[1], names: [] });
    else if (match[2] !== undefined) refs.at(-1)?.names.push(match[2]);
  }
  return refs;
}

describe('docs/postgresql.md', () => {
  it('has a column per version the test environment runs, and the rows the issue asked for', () => {
    expect(header.slice(1, -1)).toEqual(TEST_POSTGRES_MAJORS.map(String));
    expect(body.map((row) => row[0])).toEqual([
      'Row filters and column lists on a publication',
      'Failover slots (`database.failoverSlot`)',
      'Logical decoding on a standby',
      'Stored generated columns in the stream',
      '`wal_status` and `safe_wal_size` of the slot',
      'pgoutput protocol versions (highest the server accepts)',
    ]);
  });

  it.each(body.map((row) => [row[0] ?? '', row.at(-1) ?? '']))(
    '%s: names tests that run on every version and exist',
    (_, cell) => {
      const refs = testReferences(cell);
      expect(refs.length).toBeGreaterThan(0);
      for (const { file, names } of refs) {
        expect(existsSync(repoPath(file)), file).toBe(true);
        expect(PG_VERSION_SUBSET as readonly string[]).toContain(file);
        expect(names.length, `${file} names no test`).toBeGreaterThan(0);
        const source = readRepoFile(file);
        for (const name of names) expect(source, `${file} has no test "${name}"`).toContain(name);
      }
    },
  );
});
