import { describe, expect, it } from 'vitest';
import { ErrorCode, WalpurgeError } from '@walpurge/core';
import {
  SessionUnavailableError,
  isForeignKeyViolation,
  isServerWideError,
  writeErrorKind,
} from './sql-errors.js';

function pgError(code: string): Error {
  return Object.assign(new Error(`sqlstate ${code}`), { code });
}

describe('writeErrorKind', () => {
  it('lists the transient SQLSTATEs; anything else PostgreSQL says is permanent', () => {
    for (const code of ['40001', '40P01', '53100', '53200', '55P03', '57014', '58030'])
      expect([code, writeErrorKind(pgError(code))]).toEqual([code, 'transient']);
    // A trigger's RAISE, an index row too large, a row affected twice, lock-state errors other than 55P03, …
    for (const code of ['P0001', '54000', '21000', '55000', '23505', '22001', '42703', 'XX000', '0A000'])
      expect([code, writeErrorKind(pgError(code))]).toEqual([code, 'permanent']);
  });

  it('never blames a row for an unreachable or restarting database', () => {
    // … a read-only transaction (failover reached the demoted primary), a rotated password or locked
    // role (class 28), the database gone for now, the replication origin briefly held elsewhere.
    for (const code of [
      '08006',
      '08001',
      '57P01',
      '57P02',
      '57P03',
      '53300',
      '25006',
      '28P01',
      '28000',
      '3D000',
      '55006',
    ])
      expect([code, writeErrorKind(pgError(code))]).toEqual([code, 'unavailable']);
    expect(writeErrorKind(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }))).toBe(
      'unavailable',
    );
    expect(writeErrorKind(new Error('Connection terminated unexpectedly'))).toBe('unavailable');
    expect(writeErrorKind(new WalpurgeError(ErrorCode.Aborted, 'stopping', { retriable: true }))).toBe(
      'unavailable',
    );
  });

  it('never blames a row for a session that cannot be opened or set up, whatever the reason', () => {
    for (const cause of [
      pgError('55000'),
      pgError('42501'),
      new WalpurgeError(ErrorCode.Privileges, 'no origin'),
    ])
      expect(writeErrorKind(new SessionUnavailableError(cause))).toBe('unavailable');
  });

  it('tells server-wide transient errors (not a row) from those a row can cause', () => {
    for (const code of ['53100', '53200', '57014', '55P03', '58030'])
      expect([code, isServerWideError(pgError(code))]).toEqual([code, true]);
    for (const code of ['40001', '40P01', '23505', 'P0001'])
      expect([code, isServerWideError(pgError(code))]).toEqual([code, false]);
  });

  it('caps an error it does not know (transient, never retried forever)', () => {
    expect(writeErrorKind(new TypeError('boom'))).toBe('transient');
    expect(writeErrorKind(new WalpurgeError(ErrorCode.SchemaMismatch, 'no table'))).toBe('permanent');
  });

  it('recognises a foreign-key violation', () => {
    expect(isForeignKeyViolation(pgError('23503'))).toBe(true);
    expect(isForeignKeyViolation(pgError('23505'))).toBe(false);
  });
});
