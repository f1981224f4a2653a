import { describe, expect, it } from 'vitest';
import { TypeConverters } from './value-converters.js';

const types = new TypeConverters([
  { oid: 90001, name: 'mood', type: 'e', category: 'E', elementOid: 0, baseTypeOid: 0, delimiter: ',' },
  { oid: 90002, name: '_mood', type: 'b', category: 'A', elementOid: 90001, baseTypeOid: 0, delimiter: ',' },
  {
    oid: 90003,
    name: 'positive_int',
    type: 'd',
    category: 'N',
    elementOid: 0,
    baseTypeOid: 23,
    delimiter: ',',
  },
]);
const convert = (oid: number, text: string): unknown => types.converterFor(oid)(text);

describe('value converters (protocol v1 encoding)', () => {
  it('keeps int8 and numeric as strings and small integers as numbers', () => {
    expect(convert(20, '9223372036854775807')).toBe('9223372036854775807');
    expect(convert(1700, '123456789012345678901234567890.5')).toBe('123456789012345678901234567890.5');
    expect(convert(23, '-42')).toBe(-42);
    expect(convert(21, '7')).toBe(7);
  });

  it('keeps non-finite floats as strings instead of null', () => {
    expect(convert(701, '0.1')).toBe(0.1);
    expect(convert(701, 'NaN')).toBe('NaN');
    expect(convert(700, '-Infinity')).toBe('-Infinity');
  });

  it('writes timestamps as ISO-8601 with microseconds', () => {
    expect(convert(1184, '2026-11-22 14:00:00.123456+00')).toBe('2026-11-22T14:00:00.123456Z');
    expect(convert(1184, '2026-11-22 14:00:00+05:30')).toBe('2026-11-22T14:00:00+05:30');
    expect(convert(1114, '2026-11-22 14:00:00')).toBe('2026-11-22T14:00:00');
    expect(convert(1184, 'infinity')).toBe('infinity');
    expect(convert(1082, '2026-02-28')).toBe('2026-02-28');
  });

  it('parses json, keeps bytea hex and converts escape-format bytea to hex', () => {
    expect(convert(3802, '{"a": [1, null]}')).toEqual({ a: [1, null] });
    expect(convert(17, '\\xdeadbeef')).toBe('\\xdeadbeef');
    expect(convert(17, 'ab\\000\\\\')).toBe('\\x6162005c');
  });

  it('parses arrays with element conversion, NULLs and quoting, for built-in and catalog types', () => {
    expect(convert(1007, '{1,NULL,3}')).toEqual([1, null, 3]);
    expect(convert(1016, '{{1,2},{3,4}}')).toEqual([
      ['1', '2'],
      ['3', '4'],
    ]);
    expect(convert(1009, '{"a,b","c\\"d"}')).toEqual(['a,b', 'c"d']);
    expect(convert(90002, '{sad,happy}')).toEqual(['sad', 'happy']);
    expect(convert(90003, '5')).toBe(5);
    expect(convert(90001, 'ok')).toBe('ok');
  });

  it('treats unknown types as text and learns array types from pgoutput type messages', () => {
    expect(convert(123456, '(1,2)')).toBe('(1,2)');
    types.learn(123457, '_thing');
    expect(convert(123457, '{x,y}')).toEqual(['x', 'y']);
    // A domain's type message names its base type, in pg_catalog (schema ''): converted like it.
    types.learn(123458, 'int4', '');
    expect(convert(123458, '42')).toBe(42);
    types.learn(123459, '_timestamptz', '');
    expect(convert(123459, '{"2026-11-22 14:00:00+00"}')).toEqual(['2026-11-22T14:00:00Z']);
    // The same name in another schema is a user type of its own: text.
    types.learn(123460, 'int4', 'public');
    expect(convert(123460, '42')).toBe('42');
  });
});
