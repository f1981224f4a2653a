import { describe, expect, it } from 'vitest';
import { classifyPgError } from './pg-errors.js';

const context = { slot: 'walpurge', publication: 'walpurge', address: 'db:5432/app' };
const socketError = (code: string): Error => Object.assign(new Error(code), { code });

describe('classifyPgError and TLS', () => {
  it('keeps a reset or a timeout retriable', () => {
    for (const code of ['ECONNRESET', 'ETIMEDOUT'])
      expect(classifyPgError(socketError(code), context).retriable).toBe(true);
  });

  it('a port without TLS is fatal at the first start, retriable once a session has worked', () => {
    const noTls = socketError('ERR_SSL_WRONG_VERSION_NUMBER');
    expect(classifyPgError(noTls, context).retriable).toBe(false);
    expect(classifyPgError(noTls, { ...context, connectedBefore: true }).retriable).toBe(true);
    const untrusted = socketError('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    expect(classifyPgError(untrusted, { ...context, connectedBefore: true }).retriable).toBe(false);
  });
});
