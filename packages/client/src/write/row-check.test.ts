import { describe, expect, it } from 'vitest';
import { checkColumnValue, checkWriteRow } from './row-check.js';
import type { ColumnInfo, TableShape } from '@walpurge/write-behind';

function column(baseType: string, extra: Partial<ColumnInfo> = {}): ColumnInfo {
  const category = { int4: 'N', int8: 'N', numeric: 'N', text: 'S', varchar: 'S', uuid: 'U', bool: 'B' }[
    baseType
  ];
  return {
    baseType,
    category: category ?? 'U',
    maxLength: undefined,
    notNull: false,
    generated: false,
    identityAlways: false,
    enumLabels: undefined,
    ...extra,
  };
}

describe('checkColumnValue', () => {
  it.each([
    ['int4', 1, 1],
    ['int4', '17', 17],
    ['int8', '9007199254740993', '9007199254740993'],
    ['int8', 2 ** 40, 2 ** 40],
    ['uuid', 'AAAAAAAA-BBBB-4CCC-8DDD-EEEEEEEEEEEE', 'aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee'],
    ['citext', 'Alice', 'Alice'],
    ['text', 'Alice', 'Alice'],
    ['numeric', '12.50', '12.50'],
    ['bool', true, true],
    ['jsonb', { any: ['thing'] }, { any: ['thing'] }],
  ])('%s accepts %j as %j', (type, value, normalised) => {
    expect(checkColumnValue('c', column(type), value)).toEqual({ ok: true, value: normalised });
  });

  it.each([
    ['int4', 2 ** 31],
    ['int4', 1.5],
    ['int4', '1e3'],
    ['int8', 2 ** 60], // not exact as a JavaScript number: must come as a string
    ['uuid', 'nope'],
    ['numeric', 'twelve'],
    ['text', 5],
    ['bool', 'maybe'],
  ])('%s refuses %j', (type, value) => {
    expect(checkColumnValue('c', column(type), value).ok).toBe(false);
  });

  it('counts characters, not UTF-16 units, against varchar(n)', () => {
    const info = column('varchar', { maxLength: 2 });
    expect(checkColumnValue('c', info, '😀😀').ok).toBe(true);
    expect(checkColumnValue('c', info, '😀😀😀').ok).toBe(false);
  });

  it('checks enum labels', () => {
    const info = column('mood', { category: 'E', enumLabels: ['happy', 'sad'] });
    expect(checkColumnValue('c', info, 'sad').ok).toBe(true);
    expect(checkColumnValue('c', info, 'meh').ok).toBe(false);
  });
});

describe('checkWriteRow', () => {
  const shape: TableShape = {
    table: 'public.t',
    primaryKey: ['id'],
    columns: new Set(['id', 'name', 'total', 'v']),
    versionColumn: 'v',
    columnInfo: new Map([
      ['id', column('int4', { notNull: true })],
      ['name', column('text')],
      ['total', column('int4', { generated: true })],
      ['v', column('int8', { notNull: true })],
    ]),
  };

  it('needs every writable column for a whole row, and normalises the key inside the row', () => {
    expect(checkWriteRow(shape, { id: '3' }, { id: '3', name: null }, true)).toEqual({
      ok: true,
      primaryKey: { id: 3 },
      row: { id: 3, name: null },
    });
    expect(checkWriteRow(shape, { id: 3 }, { id: 3 }, true)).toMatchObject({
      ok: false,
      reason: /missing name/,
    });
    expect(checkWriteRow(shape, { id: 3 }, { id: 3 }, false)).toMatchObject({ ok: true });
  });

  it('refuses generated columns', () => {
    expect(checkWriteRow(shape, { id: 3 }, { id: 3, name: 'a', total: 1 }, true)).toMatchObject({
      ok: false,
      reason: /total is generated/,
    });
  });
});
