import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ROLES, SECTIONS_NOT_READ_BY } from './roles.js';

const configurationDoc = readFileSync(new URL('../../../../docs/configuration.md', import.meta.url), 'utf8');

describe('sections a role never reads', () => {
  it('are the ones docs/configuration.md lists for each role', () => {
    const documented = new Map<string, string[]>();
    const start = configurationDoc.indexOf('| role ');
    const table = configurationDoc.slice(start, configurationDoc.indexOf('\n\n', start));
    expect(table).toContain('sections it never reads');
    for (const match of table.matchAll(/^\| `(\w+)` +\| (.+?) +\|$/gm)) {
      const [, role = '', cell = ''] = match;
      if (!(ROLES as readonly string[]).includes(role)) continue;
      documented.set(role, [...cell.matchAll(/`(\w+)`/g)].map((section) => section[1] ?? '').filter(Boolean));
    }
    expect([...documented.keys()].sort()).toEqual([...ROLES].sort());
    for (const role of ROLES) {
      // The invalidator's cell names the flusher section as one it *does* read.
      const listed = role === 'invalidator' ? [] : documented.get(role);
      expect(listed, role).toEqual([...SECTIONS_NOT_READ_BY[role]]);
    }
  });
});
