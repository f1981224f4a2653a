import { errorChain } from './error-chain.js';
import { WalpurgeError, type ErrorCode } from './errors.js';

/**
 * Why a TLS connection failed, in words an operator can act on, from the error Node's tls module
 * (or a driver wrapping it) raised. One table for PostgreSQL and Redis, CLI and daemon.
 */
export type TlsFailureKind =
  'untrusted' | 'hostname' | 'expired' | 'no-tls' | 'no-answer' | 'client-certificate';

export interface TlsFailure {
  kind: TlsFailureKind;
  reason: string;
  /**
   * A verdict on a certificate (untrusted, wrong name, expired, client certificate refused): the
   * same every time. Otherwise (no TLS on the port, a timeout, a reset) a proxy in the middle of a
   * failover can cause it too, so it is retriable once a connection has worked.
   */
  verdict: boolean;
}

const UNTRUSTED = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
]);

function classify(code: string, message: string): TlsFailure | undefined {
  const verdict = certificateVerdict(code, message);
  if (verdict) return { ...verdict, verdict: true };
  if (/WRONG_VERSION_NUMBER|PACKET_LENGTH_TOO_LONG|HTTP_REQUEST|UNKNOWN_PROTOCOL/.test(code))
    return { kind: 'no-tls', reason: 'the server does not speak TLS on this port', verdict: false };
  if (/server does not support SSL/i.test(message))
    return { kind: 'no-tls', reason: 'the server does not accept TLS (ssl = off)', verdict: false };
  return undefined;
}

function certificateVerdict(code: string, message: string): Omit<TlsFailure, 'verdict'> | undefined {
  if (UNTRUSTED.has(code))
    return { kind: 'untrusted', reason: `the server's certificate is not signed by a trusted CA (${code})` };
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID')
    return {
      kind: 'hostname',
      reason: `the server's certificate does not name this host (${message.replace(/^.*Hostname\/IP does not match certificate's altnames: /, '')})`,
    };
  if (code === 'CERT_HAS_EXPIRED') return { kind: 'expired', reason: "the server's certificate has expired" };
  if (code === 'CERT_NOT_YET_VALID')
    return { kind: 'expired', reason: "the server's certificate is not valid yet (check the clocks)" };
  if (/ALERT_CERTIFICATE_REQUIRED|ALERT_BAD_CERTIFICATE|ALERT_UNKNOWN_CA/.test(code))
    return { kind: 'client-certificate', reason: `the server refused the client certificate (${code})` };
  if (/ALERT_HANDSHAKE_FAILURE/.test(code))
    return {
      kind: 'client-certificate',
      reason: `the server refused the handshake (${code}): a client certificate it does not accept, or no TLS version or cipher in common`,
    };
  if (/requires a valid client certificate|certificate authentication failed/i.test(message))
    return { kind: 'client-certificate', reason: `the server refused the login: ${message}` };
  return undefined;
}

/**
 * What is known of the connection that failed. A TLS 1.3 server refusing a missing client
 * certificate often shows as a reset after the handshake, not as an alert: with TLS on and no
 * client certificate, a reset is reported as that likely cause.
 */
export interface TlsAttempt {
  tls: boolean;
  clientCertificate: boolean;
}

/** The TLS failure somewhere in the error's chain, or undefined for any other error. */
export function tlsFailure(error: unknown, attempt?: TlsAttempt): TlsFailure | undefined {
  const links = errorChain(error);
  for (const coded of links) {
    const code = typeof coded.code === 'string' ? coded.code : '';
    const message = typeof coded.message === 'string' ? coded.message : '';
    const failure = classify(code, message);
    if (failure) return failure;
  }
  // A plain Redis port reads the ClientHello as a command and waits for the rest of it.
  // ioredis' connect timeout does not tell a TCP connect from a handshake that never completes.
  if (attempt?.tls && links.some((coded) => coded.code === 'ETIMEDOUT'))
    return {
      kind: 'no-answer',
      reason:
        'no answer within the connect timeout (the host is unreachable, or the port does not speak TLS and waits for more)',
      verdict: false,
    };
  if (attempt?.tls && !attempt.clientCertificate && links.some((coded) => RESET.has(String(coded.code))))
    return {
      kind: 'client-certificate',
      reason: 'the server closed the connection during TLS set-up (does it require a client certificate?)',
      verdict: false,
    };
  return undefined;
}

const RESET = new Set(['ECONNRESET', 'EPIPE']);

/** Where the settings a fix touches live, e.g. `database.ssl` or `redis.tls`. */
export interface TlsSettings {
  section: string;
  /** How to accept a certificate naming another host (verify-ca, servername). */
  otherName: string;
}

/** What to change for a failure of this kind. */
export function tlsFix(kind: TlsFailureKind, settings: TlsSettings): string {
  switch (kind) {
    case 'untrusted':
      return `set ${settings.section}.ca to the CA (or the provider's bundle) that signed the server's certificate`;
    case 'hostname':
      return `connect by a name the certificate carries, or ${settings.otherName}`;
    case 'expired':
      return "renew the server's certificate";
    case 'no-tls':
      return 'enable TLS on the server, or connect without it';
    case 'no-answer':
      return 'check that the host and port are reachable and serve TLS';
    case 'client-certificate':
      return `set ${settings.section}.cert and ${settings.section}.key to a client certificate the server accepts`;
  }
}

/** "TLS to <what> at host:port failed: reason; fix" — one line, or undefined when not a TLS failure. */
export function describeTlsFailure(
  error: unknown,
  what: string,
  address: string,
  settings: TlsSettings,
  attempt?: TlsAttempt,
): string | undefined {
  const failure = tlsFailure(error, attempt);
  return failure && formatTlsFailure(failure, what, address, settings);
}

function formatTlsFailure(failure: TlsFailure, what: string, address: string, settings: TlsSettings): string {
  return `TLS to ${what} at ${address} failed: ${failure.reason}; ${tlsFix(failure.kind, settings)}`;
}

export const DATABASE_TLS: TlsSettings = {
  section: 'database.ssl',
  otherName: 'set database.ssl.mode to verify-ca (checks the CA only)',
};
export const REDIS_TLS: TlsSettings = {
  section: 'redis.tls',
  otherName: 'set redis.tls.servername to the name it carries',
};
export const QUEUE_REDIS_TLS: TlsSettings = {
  section: 'flusher.queueRedisTls',
  otherName: 'set flusher.queueRedisTls.servername to the name it carries',
};

/**
 * The TLS failure as a WalpurgeError with `code`, or undefined for other errors. Not retriable,
 * except, once a connection has worked (`connectedBefore`), what is no verdict on a certificate.
 */
export function tlsError(
  error: unknown,
  code: ErrorCode,
  where: {
    what: string;
    address: string;
    settings: TlsSettings;
    attempt?: TlsAttempt;
    connectedBefore?: boolean;
  },
): WalpurgeError | undefined {
  const failure = tlsFailure(error, where.attempt);
  if (!failure) return undefined;
  const line = formatTlsFailure(failure, where.what, where.address, where.settings);
  const retriable = where.connectedBefore === true && !failure.verdict;
  return new WalpurgeError(code, line, { retriable, cause: error });
}
