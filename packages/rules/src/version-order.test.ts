import { describe, expect, it } from 'vitest';
import { compareVersions } from './version-order.js';

describe('compareVersions', () => {
  it('orders integers as BigInt, beyond 2^53', () => {
    expect(compareVersions('9', '10')).toBe(-1);
    expect(compareVersions('9007199254740993', '9007199254740992')).toBe(1);
    expect(compareVersions('42', '42.000')).toBe(0);
    expect(compareVersions('-1', '0')).toBe(-1);
  });

  it('orders ISO and PostgreSQL timestamps by epoch', () => {
    expect(compareVersions('2026-12-06T02:50:00.123Z', '2026-12-06 02:50:00.123456+00')).toBe(0);
    expect(compareVersions('2026-12-06T02:50:00.122Z', '2026-12-06 02:50:00.123456+00')).toBe(-1);
    expect(compareVersions('2026-12-06T02:50:00.124Z', '2026-12-06T02:50:00.123999Z')).toBe(1);
    expect(compareVersions('2026-12-06 04:50:00+02', '2026-12-06T02:50:00.000Z')).toBe(0);
    expect(compareVersions('2026-12-06 02:50:00.5+05:30', '2026-12-05T21:20:00.4Z')).toBe(1);
  });

  it('compares dates and timestamps, a date being midnight UTC', () => {
    expect(compareVersions('2026-12-06', '2026-12-05T23:59:59.999Z')).toBe(1);
    expect(compareVersions('2026-12-06', '2026-12-06')).toBe(0);
  });

  it('cannot compare text, or an integer with a timestamp', () => {
    expect(compareVersions('abc', 'abd')).toBeUndefined();
    expect(compareVersions('42', '2026-12-06T02:50:00Z')).toBeUndefined();
    expect(compareVersions('', '1')).toBeUndefined();
  });
});

describe('compareVersions: the traps of dates and decimals', () => {
  it('orders years 0-99 as written (not as 1900-1999, as Date.UTC would)', () => {
    expect(compareVersions('0050-01-01', '1950-01-01')).toBe(-1);
    expect(compareVersions('0099-12-31 23:59:59+00', '0100-01-01 00:00:00+00')).toBe(-1);
    expect(compareVersions('0001-01-01T00:00:00Z', '0001-01-01 00:00:00+00')).toBe(0);
    expect(compareVersions('2024-02-29', '2024-03-01')).toBe(-1);
    expect(compareVersions('2026-13-01', '2026-01-01')).toBeUndefined();
  });

  it('compares numerics with a scale exactly, signs included', () => {
    expect(compareVersions('42.5', '42.50')).toBe(0);
    expect(compareVersions('42.5', '42.49999999999999999999')).toBe(1);
    expect(compareVersions('42', '42.000')).toBe(0);
    expect(compareVersions('42', '42.001')).toBe(-1);
    expect(compareVersions('-1.5', '-1.25')).toBe(-1);
    expect(compareVersions('-0.5', '0.5')).toBe(-1);
    expect(compareVersions('-0', '0.0')).toBe(0);
    expect(compareVersions('-3', '2')).toBe(-1);
    expect(compareVersions('9007199254740993.1', '9007199254740993.01')).toBe(1);
  });
});
