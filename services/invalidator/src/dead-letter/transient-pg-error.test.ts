import { describe, expect, it } from 'vitest';
import { isTransientPgError } from './transient-pg-error.js';

const pgError = (code: string): Error => Object.assign(new Error(`pg ${code}`), { code });

describe('PostgreSQL errors worth retrying when storing a dead letter', () => {
  it.each([
    ['08006', 'connection failure'],
    ['40001', 'serialization failure'],
    ['40P01', 'deadlock'],
    ['53300', 'too many connections'],
    ['57P01', 'admin shutdown (failover)'],
    ['57014', 'statement timeout'],
    ['58030', 'I/O error'],
  ])('%s (%s) is transient', (code) => expect(isTransientPgError(pgError(code))).toBe(true));

  it.each([
    ['42P01', 'table dropped'],
    ['42501', 'INSERT revoked'],
    ['42703', 'column missing'],
    ['23502', 'not-null violation'],
    ['22P02', 'bad input'],
  ])('%s (%s) is permanent', (code) => expect(isTransientPgError(pgError(code))).toBe(false));

  it('network errors and node-postgres connection messages are transient; anything unknown is not', () => {
    expect(isTransientPgError(pgError('ECONNREFUSED'))).toBe(true);
    expect(isTransientPgError(pgError('ECONNRESET'))).toBe(true);
    expect(isTransientPgError(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(isTransientPgError(new Error('timeout exceeded when trying to connect'))).toBe(true);
    expect(isTransientPgError(new Error('something else'))).toBe(false);
    expect(isTransientPgError('a string')).toBe(false);
    expect(isTransientPgError(undefined)).toBe(false);
  });
});
