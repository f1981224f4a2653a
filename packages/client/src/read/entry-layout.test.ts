import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ENTRY_FIELDS } from './entry-layout.js';

describe('ENTRY_FIELDS', () => {
  it('names every field the layout comment of the Lua scripts documents, and only those', () => {
    const source = readFileSync(new URL('./lua-scripts.ts', import.meta.url), 'utf8');
    const header = source.slice(0, source.indexOf('*/'));
    // Lines of the form ` *   name  meaning` (the lease token's own line starts with "lease").
    const documented = [...header.matchAll(/^ \* {3}(\w+)\s/gm)].map((match) => match[1]);
    expect(documented).toEqual(expect.arrayContaining(Object.values(ENTRY_FIELDS)));
    const leaseFields = ['d', 'lease', 'lx']; // the read path's own, not read by other packages
    expect(documented.filter((name) => !leaseFields.includes(name ?? '')).sort()).toEqual(
      Object.values(ENTRY_FIELDS).sort(),
    );
  });
});
