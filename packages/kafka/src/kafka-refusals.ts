import {
  ErrorCode,
  WalpurgeError,
  errorChain,
  failedAddress,
  tlsFailure,
  tlsFix,
  type TlsSettings,
} from '@walpurge/core';

/**
 * A broker that is up but refuses us: what to fix, and whether it is a verdict (the same on every
 * attempt) or what a broker restart can cause too.
 */
interface SecurityFailure {
  reason: string;
  hint: string;
  verdict: boolean;
}

const KAFKA_TLS: TlsSettings = {
  section: 'kafka.ssl',
  otherName: 'set kafka.ssl.servername to the name it carries',
};

// kafkajs's own words, which Node's TLS codes (core's table) do not cover. A Kafka listener without
// TLS closes the connection on our TLS ClientHello, without an answer.
const TLS_CLOSED: SecurityFailure = {
  reason: 'TLS: the broker closed the connection during the TLS handshake (a listener without TLS?)',
  hint: 'set kafka.ssl: false for a plaintext listener, or use the TLS listener port',
  verdict: false,
};
const SASL_TEXTS: Array<[RegExp, SecurityFailure]> = [
  [
    /mechanism is not supported by the server|does not support the requested SASL mechanism|UNSUPPORTED_SASL_MECHANISM/i,
    {
      reason: 'SASL: the broker does not offer this mechanism',
      hint: "set kafka.sasl.mechanism to one the broker's listener enables (sasl.enabled.mechanisms)",
      verdict: true,
    },
  ],
  // Before "authentication failed": kafkajs words a connection dropped mid-SASL as
  // "SASL PLAIN authentication failed: Connection closed by the server".
  [
    /Connection closed by the server|Closed connection/i,
    {
      reason: 'the broker closed the connection during the handshake (TLS or SASL expected?)',
      hint: "match kafka.ssl and kafka.sasl to the listener's security protocol",
      verdict: false,
    },
  ],
  [
    /Authentication failed|invalid (username|credentials)|SASL \S+ authentication failed/i,
    {
      reason: 'SASL: authentication failed (wrong user name, password or token)',
      hint: 'check kafka.sasl.username and kafka.sasl.password (or the token kafka.sasl.tokenProvider returns)',
      verdict: true,
    },
  ],
];

/** The TLS (core's one table of Node's codes) or SASL refusal anywhere in the error's chain, else undefined. */
export function securityFailure(error: unknown): SecurityFailure | undefined {
  // kafkajs copies the socket's code onto its KafkaJSConnectionError, so core's table sees it.
  const tls = tlsFailure(error);
  if (tls) return { reason: `TLS: ${tls.reason}`, hint: tlsFix(tls.kind, KAFKA_TLS), verdict: tls.verdict };
  for (const failure of errorChain(error)) {
    const { message } = failure;
    if (typeof message !== 'string') continue;
    if (/disconnected before secure TLS connection/i.test(message)) return TLS_CLOSED;
    for (const [pattern, known] of SASL_TEXTS) if (pattern.test(message)) return known;
  }
  return undefined;
}

/**
 * The error of a failed connect(). A TLS or SASL refusal becomes one line naming the broker, the
 * reason and the option: not retriable, so a role stops instead of retrying. Once this client has
 * connected (`connectedBefore`), only a verdict (a certificate, SASL credentials or mechanism) stays
 * fatal: a closed or reset handshake then is a broker restarting, retried as an outage.
 */
export function classifyConnectError(
  error: unknown,
  brokers: readonly string[],
  connectedBefore = false,
): unknown {
  const failure = securityFailure(error);
  if (!failure) return error;
  const where = failedAddress(error) ?? (brokers.length > 0 ? brokers.join(', ') : 'the configured brokers');
  const retriable = connectedBefore && !failure.verdict;
  return new WalpurgeError(
    retriable ? ErrorCode.KafkaUnavailable : ErrorCode.KafkaSecurity,
    `cannot connect to Kafka at ${where}: ${failure.reason}`,
    { retriable, cause: error, hint: failure.hint },
  );
}
