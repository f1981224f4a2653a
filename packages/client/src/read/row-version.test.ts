import { describe, expect, it } from 'vitest';
import { rowVersionText, versionOf } from './row-version.js';

describe('rowVersionText', () => {
  it('writes integers as decimal text, dates as ISO-8601 and strings as given', () => {
    expect(rowVersionText(42)).toBe('42');
    expect(rowVersionText(Number.MAX_SAFE_INTEGER)).toBe('9007199254740991');
    expect(rowVersionText(1.5)).toBe('1.5');
    expect(rowVersionText(12345678901234567890n)).toBe('12345678901234567890');
    expect(rowVersionText(new Date('2026-12-06T02:50:00.123Z'))).toBe('2026-12-06T02:50:00.123Z');
    expect(rowVersionText('2026-12-06 02:50:00.123456+00')).toBe('2026-12-06 02:50:00.123456+00');
  });

  it('refuses what it cannot store faithfully, saying what to return instead', () => {
    expect(() => rowVersionText(2 ** 53 + 2)).toThrow(/beyond 2\^53.*bigint or a string/);
    expect(() => rowVersionText(Number.POSITIVE_INFINITY)).toThrow('the version is Infinity');
    expect(() => rowVersionText(new Date(Number.NaN))).toThrow('invalid Date');
    expect(() => rowVersionText('')).toThrow('empty string');
    // Untyped callers can return anything.
    expect(() => rowVersionText(true as unknown as string)).toThrow(/is a boolean: return a string/);
  });
});

describe('versionOf', () => {
  it('never throws: it reports why there is no version', () => {
    expect(versionOf(() => 7)).toEqual({ version: '7' });
    expect(versionOf(() => undefined)).toEqual({ version: undefined, reason: 'none' });
    expect(versionOf(() => null)).toEqual({ version: undefined, reason: 'none' });
    const thrown = new Error('no such field');
    expect(
      versionOf(() => {
        throw thrown;
      }),
    ).toEqual({ version: undefined, reason: 'threw', error: thrown });
    expect(versionOf(() => Number.NaN)).toMatchObject({ version: undefined, reason: 'invalid' });
  });
});
