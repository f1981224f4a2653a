import { describe, expect, it } from 'vitest';
import { sqlState } from './sql-state.js';

describe('sqlState', () => {
  it('reads a five-character SQLSTATE from a pg error', () => {
    expect(sqlState(Object.assign(new Error('dup'), { code: '23505' }))).toBe('23505');
    expect(sqlState({ code: '28P01' })).toBe('28P01');
  });

  it('ignores Node error codes and values without a code', () => {
    expect(sqlState(Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }))).toBeUndefined();
    expect(sqlState({ code: 23505 })).toBeUndefined();
    expect(sqlState(new Error('plain'))).toBeUndefined();
    expect(sqlState(undefined)).toBeUndefined();
    expect(sqlState('23505')).toBeUndefined();
  });
});
