import { describe, expect, it } from 'vitest';
import { ErrorCode } from './errors.js';
import { DATABASE_TLS, REDIS_TLS, describeTlsFailure, tlsError, tlsFailure } from './tls-errors.js';

/** The shape of what node:tls raises: an Error with an OpenSSL or Node code. */
function tlsSocketError(code: string, message = code): Error {
  return Object.assign(new Error(message), { code });
}

describe('TLS failures as one line', () => {
  it('names the reason and the option to change, through wrapping causes', () => {
    const wrapped = new Error('connect failed', { cause: tlsSocketError('CERT_HAS_EXPIRED') });
    expect(describeTlsFailure(wrapped, 'PostgreSQL', 'db:5432/app', DATABASE_TLS)).toBe(
      "TLS to PostgreSQL at db:5432/app failed: the server's certificate has expired; renew the server's certificate",
    );
    expect(
      describeTlsFailure(
        tlsSocketError('DEPTH_ZERO_SELF_SIGNED_CERT'),
        'the cache Redis',
        'c:6380',
        REDIS_TLS,
      ),
    ).toBe(
      "TLS to the cache Redis at c:6380 failed: the server's certificate is not signed by a trusted CA (DEPTH_ZERO_SELF_SIGNED_CERT); set redis.tls.ca to the CA (or the provider's bundle) that signed the server's certificate",
    );
  });

  it('leaves errors that are not about TLS alone', () => {
    expect(tlsFailure(tlsSocketError('ECONNREFUSED'))).toBeUndefined();
    // A reset counts only on a TLS connection without a client certificate.
    expect(
      tlsFailure(tlsSocketError('ECONNRESET'), { tls: false, clientCertificate: false }),
    ).toBeUndefined();
    expect(tlsFailure(tlsSocketError('ECONNRESET'), { tls: true, clientCertificate: true })).toBeUndefined();
    expect(tlsFailure(tlsSocketError('ECONNRESET'), { tls: true, clientCertificate: false })?.kind).toBe(
      'client-certificate',
    );
  });

  it('a timeout over TLS names both causes: an unreachable host or a port without TLS', () => {
    const line = describeTlsFailure(tlsSocketError('ETIMEDOUT'), 'the cache Redis', 'c:6380', REDIS_TLS, {
      tls: true,
      clientCertificate: false,
    });
    expect(line).toBe(
      'TLS to the cache Redis at c:6380 failed: no answer within the connect timeout (the host is unreachable, or the port does not speak TLS and waits for more); check that the host and port are reachable and serve TLS',
    );
  });

  it('only certificate verdicts stay fatal once a connection has worked', () => {
    const where = { what: 'PostgreSQL', address: 'db:5432/app', settings: DATABASE_TLS };
    const noTls = tlsSocketError('ERR_SSL_WRONG_VERSION_NUMBER');
    expect(tlsError(noTls, ErrorCode.DatabaseUnreachable, where)?.retriable).toBe(false);
    expect(
      tlsError(noTls, ErrorCode.DatabaseUnreachable, { ...where, connectedBefore: true })?.retriable,
    ).toBe(true);
    const untrusted = tlsSocketError('SELF_SIGNED_CERT_IN_CHAIN');
    expect(
      tlsError(untrusted, ErrorCode.DatabaseUnreachable, { ...where, connectedBefore: true })?.retriable,
    ).toBe(false);
  });

  it('a handshake failure alert names every cause it may have', () => {
    expect(tlsFailure(tlsSocketError('ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE'))?.reason).toBe(
      'the server refused the handshake (ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE): a client certificate it does not accept, or no TLS version or cipher in common',
    );
  });
});
