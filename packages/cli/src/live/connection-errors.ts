import { ErrorCode, WalpurgeError, errorMessage, redactSecrets } from '@walpurge/core';

const REASONS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host not found',
  ETIMEDOUT: 'connection timed out',
  ECONNRESET: 'connection reset',
  EHOSTUNREACH: 'host unreachable',
};

/**
 * TLS and SASL failures: a broker that is up but refuses us. Each names what to fix; matched on the
 * error code Node gives the TLS socket, or on kafkajs's SASL error texts.
 */
interface SecurityFailure {
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
    /mechanism is not supported by the server|UNSUPPORTED_SASL_MECHANISM/i,
    {
      reason: 'SASL: the broker does not offer this mechanism',
      hint: "set kafka.sasl.mechanism to one the broker's listener enables (sasl.enabled.mechanisms)",
    },
  ],
  [
    /Authentication failed|invalid (username|credentials)|SASL \S+ authentication failed/i,
    {
      reason: 'SASL: authentication failed (wrong user name, password or token)',
      hint: 'check kafka.sasl.username and kafka.sasl.password (or the token kafka.sasl.tokenProvider returns)',
    },
  ],
  [
    /Connection closed by the server|Closed connection/i,
    {
      reason: 'the broker closed the connection during the handshake (TLS or SASL expected?)',
      hint: "match kafka.ssl and kafka.sasl to the listener's security protocol",
    },
  ],
];

/** The TLS or SASL refusal anywhere in the error's chain, else undefined. */
export function securityFailure(error: unknown): SecurityFailure | undefined {
  for (const failure of chain(error)) {
    if (typeof failure.code === 'string' && TLS_CODES[failure.code]) return TLS_CODES[failure.code];
  }
  for (const failure of chain(error)) {
    const message = (failure as { message?: unknown }).message;
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

/** A broker that refused our TLS or SASL as one line naming the broker, the reason and the option. */
export function kafkaRefused(
  error: unknown,
  failure: SecurityFailure,
  brokers?: readonly string[],
): WalpurgeError {
  const where = socketAddress(error) ?? brokers?.join(', ') ?? 'the configured brokers';
  return new WalpurgeError(
    ErrorCode.KafkaUnavailable,
    `Kafka at ${where} refused the connection: ${failure.reason}`,
    {
      retriable: false,
      cause: error,
      hint: failure.hint,
    },
  );
}

interface Failure {
  code?: unknown;
  address?: unknown;
  port?: unknown;
  broker?: unknown;
  /** Set by @walpurge/kafka's clients on a failed connect(): the configured brokers. */
  brokers?: unknown;
  name?: unknown;
  cause?: unknown;
  errors?: unknown;
}

/** The error and its causes (kafkajs wraps twice, AggregateError holds one per address tried). */
function chain(error: unknown): Failure[] {
  const out: Failure[] = [];
  const queue: unknown[] = [error];
  while (queue.length > 0 && out.length < 10) {
    const next = queue.shift();
    if (typeof next !== 'object' || next === null) continue;
    const failure = next as Failure;
    out.push(failure);
    if (failure.cause) queue.push(failure.cause);
    if (Array.isArray(failure.errors)) queue.push(...(failure.errors as unknown[]));
  }
  return out;
}

/** "connection refused" for a socket error anywhere in the chain, else undefined. */
export function connectionReason(error: unknown): string | undefined {
  for (const failure of chain(error)) {
    if (typeof failure.code === 'string' && REASONS[failure.code]) return REASONS[failure.code];
  }
  const text = errorMessage(error);
  for (const [code, reason] of Object.entries(REASONS)) if (text.includes(code)) return reason;
  return undefined;
}

function isKafkaError(error: unknown): boolean {
  return chain(error).some(
    (failure) => typeof failure.name === 'string' && failure.name.startsWith('KafkaJS'),
  );
}

/** host:port the socket error names, when it names one. */
function socketAddress(error: unknown): string | undefined {
  for (const failure of chain(error)) {
    if (typeof failure.broker === 'string') return failure.broker;
    if (Array.isArray(failure.brokers) && failure.brokers.length > 0) return failure.brokers.join(', ');
    if (typeof failure.address === 'string' && failure.port !== undefined)
      return `${failure.address}:${String(failure.port)}`;
  }
  return undefined;
}

export function kafkaUnavailable(error: unknown, brokers?: readonly string[]): WalpurgeError {
  const where = brokers?.join(', ') ?? socketAddress(error) ?? 'the configured brokers';
  const reason = connectionReason(error) ?? redactSecrets(errorMessage(error).split('\n')[0] ?? '');
  return new WalpurgeError(ErrorCode.KafkaUnavailable, `cannot reach Kafka at ${where}: ${reason}`, {
    retriable: true,
    cause: error,
    hint: 'check kafka.brokers and that the brokers are up',
  });
}

/** Connects a kafkajs client, turning "broker unreachable" into one line naming the brokers. */
export async function connectKafka(
  client: { connect(): Promise<void> },
  brokers: readonly string[],
): Promise<void> {
  try {
    await client.connect();
  } catch (error) {
    const refused = securityFailure(error);
    if (refused) throw kafkaRefused(error, refused, brokers);
    throw connectionReason(error) ? kafkaUnavailable(error, brokers) : error;
  }
}

export function redisUnavailable(error: unknown, what: string, address?: string): WalpurgeError {
  const where = address ?? socketAddress(error) ?? 'the configured address';
  const reason = connectionReason(error) ?? redactSecrets(errorMessage(error).split('\n')[0] ?? '');
  return new WalpurgeError(ErrorCode.RedisUnavailable, `cannot reach ${what} at ${where}: ${reason}`, {
    retriable: true,
    cause: error,
  });
}

/**
 * A Kafka client's connection failure that reached the top of a command (a role that cannot reach
 * its brokers at start) as one line an operator can act on; undefined for anything else.
 */
export function asConnectionError(error: unknown): WalpurgeError | undefined {
  if (error instanceof WalpurgeError) return undefined;
  if (!isKafkaError(error)) return undefined;
  const refused = securityFailure(error);
  if (refused) return kafkaRefused(error, refused);
  if (connectionReason(error)) return kafkaUnavailable(error);
  return undefined;
}
