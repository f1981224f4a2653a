import { describe, expect, it } from 'vitest';
import { ChangeEventV1 } from './change-event.js';
import { checkChangeEventV1 } from './change-event-fast-check.js';

const insert = {
  v: 1,
  op: 'c',
  source: {
    db: 'app',
    schema: 'public',
    table: 'users',
    lsn: '0/16B3748',
    xid: 731,
    commitTs: '2026-11-22T14:00:00.123Z',
    origin: null,
  },
  key: { id: 42 },
  before: null,
  after: { id: 42, email: 'a@x', tags: ['x'], doc: { nested: true } },
  unchanged: [],
};
const update = {
  ...insert,
  op: 'u',
  source: {
    ...insert.source,
    origin: 'walpurge_flusher',
    lsnIsCommit: false,
    commitTs: '2026-11-22T15:00:00+02:00',
  },
  before: { id: 42, email: 'old@x' },
  unchanged: ['bio'],
};
const deleteByKey = {
  ...insert,
  op: 'd',
  before: null,
  after: null,
  source: { ...insert.source, xid: null },
};
const truncate = { ...insert, op: 't', key: null, before: null, after: null };
const valid = [insert, update, deleteByKey, truncate];

const oddValues: unknown[] = [
  undefined,
  null,
  '',
  'x',
  0,
  -1,
  1.5,
  2 ** 60,
  true,
  [],
  ['a', 1],
  {},
  { a: 1 },
  '0/1',
  '2026-11-22',
  '2026-11-22T14:00:00',
  '2026-13-40T99:00:00Z',
];

/** Every valid event with one field (at the top or in `source`) replaced, removed or added. */
function variants(): Array<{ name: string; json: string }> {
  const out: Array<{ name: string; json: string }> = [];
  for (const base of valid) {
    out.push({ name: `${base.op} as is`, json: JSON.stringify(base) });
    const { unchanged: _, ...withoutUnchanged } = base;
    out.push({ name: `${base.op} without unchanged`, json: JSON.stringify(withoutUnchanged) });
    const fields = [...Object.keys(base), 'extra'];
    const sourceFields = [...Object.keys(base.source), 'lsnIsCommit', 'extra'];
    for (const value of oddValues) {
      for (const field of fields)
        out.push({
          name: `${base.op} ${field}=${JSON.stringify(value)}`,
          json: JSON.stringify({ ...base, [field]: value }),
        });
      for (const field of sourceFields)
        out.push({
          name: `${base.op} source.${field}=${JSON.stringify(value)}`,
          json: JSON.stringify({ ...base, source: { ...base.source, [field]: value } }),
        });
    }
  }
  // JSON.parse makes `__proto__` an own key; the schema's copy of the row treats it differently.
  out.push({
    name: 'row with own __proto__',
    json: JSON.stringify(insert).replace('"id":42,', '"__proto__":{"a":1},"id":42,'),
  });
  return out;
}

describe('checkChangeEventV1', () => {
  it('accepts the common shapes, as the schema returns them', () => {
    for (const event of valid) {
      const checked = checkChangeEventV1(JSON.parse(JSON.stringify(event)) as Record<string, unknown>);
      expect(checked, event.op).toBeDefined();
      expect(checked).toStrictEqual(ChangeEventV1.parse(JSON.parse(JSON.stringify(event))));
    }
  });

  it('never accepts what the schema refuses, and returns what the schema returns when it accepts', () => {
    let accepted = 0;
    let refusedBySchema = 0;
    for (const { name, json } of variants()) {
      const checked = checkChangeEventV1(JSON.parse(json) as Record<string, unknown>);
      const parsed = ChangeEventV1.safeParse(JSON.parse(json));
      if (!parsed.success) refusedBySchema += 1;
      if (checked === undefined) continue;
      accepted += 1;
      expect(parsed.success, name).toBe(true);
      expect(checked, name).toStrictEqual(parsed.data);
    }
    // The variants exercise both sides: some pass the fast check, many are refused by the schema.
    expect(accepted).toBeGreaterThan(20);
    expect(refusedBySchema).toBeGreaterThan(100);
  });

  it('checks each new commit timestamp, not only the first one seen', () => {
    const at = (commitTs: string) =>
      checkChangeEventV1(JSON.parse(JSON.stringify({ ...insert, source: { ...insert.source, commitTs } })));
    expect(at('2026-11-22T14:00:00Z')).toBeDefined();
    expect(at('2026-11-22T14:00:00Z')).toBeDefined();
    expect(at('not a time')).toBeUndefined();
    expect(at('2026-11-22T14:00:01Z')).toBeDefined();
  });
});
