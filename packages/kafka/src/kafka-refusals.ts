import { ErrorCode, WalpurgeError, errorChain, failedAddress } from '@walpurge/core';

/**
 * TLS and SASL failures: a broker that is up but refuses us. Each names what to fix; matched on the
 * error code Node gives the TLS socket, or on kafkajs's SASL error texts.
 */
export interface SecurityFailure {
  reason: string;
  hint: string;
}
const TLS_UNKNOWN_CA: SecurityFailure = {
  reason: "TLS: the broker's certificate is not signed by a trusted CA",
  hint: "set kafka.ssl.ca to the PEM file of the CA that signed the brokers' certificates",
};
const TLS_CODES: Record<string, SecurityFailure> = {
  SELF_SIGNED_CERT_IN_CHAIN: TLS_UNKNOWN_CA,
  DEPTH_ZERO_SELF_SIGNED_CERT: TLS_UNKNOWN_CA,
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: TLS_UNKNOWN_CA,
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: TLS_UNKNOWN_CA,
  UNABLE_TO_GET_ISSUER_CERT: TLS_UNKNOWN_CA,
  CERT_UNTRUSTED: TLS_UNKNOWN_CA,
  CERT_HAS_EXPIRED: {
    reason: "TLS: the broker's certificate has expired",
    hint: "renew the brokers' certificates",
  },
  ERR_TLS_CERT_ALTNAME_INVALID: {
    reason: "TLS: the broker's certificate does not name this host",
    hint: 'connect by a host name the certificate carries, or set kafka.ssl.servername to it',
  },
  ERR_SSL_WRONG_VERSION_NUMBER: {
    reason: 'TLS: the broker answered in plaintext',
    hint: 'this listener has no TLS: set kafka.ssl: false, or use the TLS listener port',
  },
  ERR_SSL_PACKET_LENGTH_TOO_LONG: {
    reason: 'TLS: the broker answered in plaintext',
    hint: 'this listener has no TLS: set kafka.ssl: false, or use the TLS listener port',
  },
  ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED: {
    reason: 'TLS: the broker requires a client certificate',
    hint: 'set kafka.ssl.cert and kafka.ssl.key (mTLS)',
  },
  // What a broker with ssl.client.auth=required answers to a missing certificate too.
  ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE: {
    reason: 'TLS: the broker refused the client certificate (or requires one)',
    hint: "set kafka.ssl.cert and kafka.ssl.key (mTLS), signed by a CA the brokers' truststore holds",
  },
  ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE: {
    reason: 'TLS: the broker refused the handshake',
    hint: 'check kafka.ssl (a client certificate may be required: kafka.ssl.cert and kafka.ssl.key)',
  },
  ERR_SSL_TLSV1_ALERT_UNKNOWN_CA: {
    reason: 'TLS: the broker does not trust the client certificate',
    hint: "check kafka.ssl.cert and kafka.ssl.key, and that the brokers' truststore holds their CA",
  },
};
// A Kafka listener without TLS closes the connection on our TLS ClientHello, without an answer.
const TLS_CLOSED: SecurityFailure = {
  reason: 'TLS: the broker closed the connection during the TLS handshake (a listener without TLS?)',
  hint: 'set kafka.ssl: false for a plaintext listener, or use the TLS listener port',
};
const SASL_TEXTS: Array<[RegExp, SecurityFailure]> = [
  [
    /mechanism is not supported by the server|does not support the requested SASL mechanism|UNSUPPORTED_SASL_MECHANISM/i,
    {
      reason: 'SASL: the broker does not offer this mechanism',
      hint: "set kafka.sasl.mechanism to one the broker's listener enables (sasl.enabled.mechanisms)",
    },
  ],
  // Before "authentication failed": kafkajs words a connection dropped mid-SASL as
  // "SASL PLAIN authentication failed: Connection closed by the server".
  [
    /Connection closed by the server|Closed connection/i,
    {
      reason: 'the broker closed the connection during the handshake (TLS or SASL expected?)',
      hint: "match kafka.ssl and kafka.sasl to the listener's security protocol",
    },
  ],
  [
    /Authentication failed|invalid (username|credentials)|SASL \S+ authentication failed/i,
    {
      reason: 'SASL: authentication failed (wrong user name, password or token)',
      hint: 'check kafka.sasl.username and kafka.sasl.password (or the token kafka.sasl.tokenProvider returns)',
    },
  ],
];

/** The TLS or SASL refusal anywhere in the error's chain, else undefined. */
export function securityFailure(error: unknown): SecurityFailure | undefined {
  for (const failure of errorChain(error)) {
    if (typeof failure.code === 'string' && TLS_CODES[failure.code]) return TLS_CODES[failure.code];
  }
  for (const failure of errorChain(error)) {
    const { message } = failure;
    if (typeof message !== 'string') continue;
    for (const [code, known] of Object.entries(TLS_CODES)) if (message.includes(code)) return known;
    if (/unable to verify the first certificate|self.signed certificate/i.test(message))
      return TLS_UNKNOWN_CA;
    if (/wrong version number/i.test(message)) return TLS_CODES['ERR_SSL_WRONG_VERSION_NUMBER'];
    if (/disconnected before secure TLS connection/i.test(message)) return TLS_CLOSED;
    if (/certificate required/i.test(message)) return TLS_CODES['ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED'];
    for (const [pattern, known] of SASL_TEXTS) if (pattern.test(message)) return known;
  }
  return undefined;
}

/**
 * A broker that refused our TLS or SASL (or a TLS check of ours that refused the broker) as one line
 * naming the broker, the reason and the option: not retriable, so a role stops instead of retrying.
 */
export function kafkaRefused(
  error: unknown,
  failure: SecurityFailure,
  brokers?: readonly string[],
): WalpurgeError {
  const where = failedAddress(error) ?? brokers?.join(', ') ?? 'the configured brokers';
  return new WalpurgeError(
    ErrorCode.KafkaSecurity,
    `cannot connect to Kafka at ${where}: ${failure.reason}`,
    {
      retriable: false,
      cause: error,
      hint: failure.hint,
    },
  );
}

/** The error of a failed connect(): a TLS or SASL refusal becomes kafkaRefused's line, else unchanged. */
export function classifyConnectError(error: unknown, brokers: readonly string[]): unknown {
  const refused = securityFailure(error);
  return refused ? kafkaRefused(error, refused, brokers) : error;
}
