import { ErrorCode, WalpurgeError, failedAddress } from '@walpurge/core';
import { securityFailure } from '@walpurge/kafka';

/**
 * The errors of @platformatic/kafka as the sink's failure rules need them: retriable (an outage, a
 * leader moving: the listener replays from its durable LSN once Kafka is back) or not (a verdict that
 * the next attempt would get again), each with the operator's line. The same rules as the kafkajs
 * path: a TLS or SASL refusal at connect stops the role; a broker that is down, refuses the
 * connection or times out is an outage.
 */

/** The fields of platformatic's errors (GenericError, ProtocolError, MultipleErrors) and Node's. */
interface Failure {
  message?: unknown;
  code?: unknown;
  apiId?: unknown;
  serverErrorMessage?: unknown;
  cause?: unknown;
  errors?: unknown;
}

/**
 * Every error inside one: causes and the errors of a MultipleErrors (one per attempt of a retried
 * operation, one per broker of a send). core's errorChain stops at 10, too few after 8 retries.
 */
export function platformaticFailures(error: unknown): Failure[] {
  const out: Failure[] = [];
  const queue: unknown[] = [error];
  const seen = new Set<unknown>();
  while (queue.length > 0 && out.length < 200) {
    const next = queue.shift();
    if (typeof next !== 'object' || next === null || seen.has(next)) continue;
    seen.add(next);
    const failure = next as Failure;
    out.push(failure);
    if (failure.cause) queue.push(failure.cause);
    if (Array.isArray(failure.errors)) queue.push(...(failure.errors as unknown[]));
  }
  return out;
}

/** Kafka's error names (ProtocolError.apiId) in the error, in order, without repeats. */
function kafkaErrorIds(failures: readonly Failure[]): string[] {
  const ids = new Set<string>();
  for (const failure of failures) if (typeof failure.apiId === 'string') ids.add(failure.apiId);
  return [...ids];
}

/** A short account of what failed: Kafka's error names and the innermost distinct messages. */
export function describePlatformaticError(error: unknown): string {
  const failures = platformaticFailures(error);
  const parts = new Set<string>();
  for (const failure of failures) {
    if (typeof failure.apiId === 'string') {
      const server = typeof failure.serverErrorMessage === 'string' ? `: ${failure.serverErrorMessage}` : '';
      parts.add(`${failure.apiId}${server}`);
    }
  }
  // Without a Kafka error: the leaves (a socket's ECONNREFUSED, a timeout), not the wrappers around them.
  if (parts.size === 0)
    for (const failure of failures) {
      const leaf = !failure.cause && !Array.isArray(failure.errors);
      if (leaf && typeof failure.message === 'string') parts.add(failure.message);
    }
  const first = failures[0];
  if (parts.size === 0 && typeof first?.message === 'string') parts.add(first.message);
  return [...parts].slice(0, 3).join('; ');
}

const TOO_LARGE = new Set(['MESSAGE_TOO_LARGE', 'RECORD_LIST_TOO_LARGE']);
const NOT_AUTHORIZED = new Set([
  'TOPIC_AUTHORIZATION_FAILED',
  'CLUSTER_AUTHORIZATION_FAILED',
  'TRANSACTIONAL_ID_AUTHORIZATION_FAILED',
]);

interface Context {
  brokers: readonly string[];
  topic: string;
  /** connect: the producer's first contact (TLS, SASL, its producer id); send: a produce request. */
  phase: 'connect' | 'send';
  /** Some client of this process has connected with these settings: a reset handshake is an outage. */
  connectedBefore: boolean;
}

/** The broker closed or dropped the connection (or it timed out) somewhere in the chain. */
function connectionBroke(failures: readonly Failure[]): boolean {
  return failures.some(
    (failure) =>
      failure.code === 'PLT_KFK_NETWORK' ||
      failure.code === 'PLT_KFK_TIMEOUT' ||
      failure.code === 'ECONNRESET' ||
      failure.code === 'EPIPE',
  );
}

const HANDSHAKE_CLOSED = {
  reason: 'the broker closed the connection during the handshake (TLS or SASL expected?)',
  hint: "match kafka.ssl and kafka.sasl to the listener's security protocol",
  verdict: false,
};

/**
 * TLS and SASL refusals in platformatic's own words, which kafkajs's texts (securityFailure) do not
 * cover. Its "SASL authentication failed" and "Cannot find a suitable SASL mechanism" wrap whatever
 * broke the handshake, a restarting broker included: only Kafka's own error code is a verdict.
 */
function platformaticSecurityFailure(
  failures: readonly Failure[],
): { reason: string; hint: string; verdict: boolean } | undefined {
  const ids = kafkaErrorIds(failures);
  if (ids.includes('UNSUPPORTED_SASL_MECHANISM'))
    return {
      reason: 'SASL: the broker does not offer this mechanism',
      hint: "set kafka.sasl.mechanism to one the broker's listener enables (sasl.enabled.mechanisms)",
      verdict: true,
    };
  const messages = failures.map((failure) => (typeof failure.message === 'string' ? failure.message : ''));
  const saslFailed = messages.some((m) => /SASL authentication failed|Invalid server signature/i.test(m));
  if (ids.includes('SASL_AUTHENTICATION_FAILED') || (saslFailed && !connectionBroke(failures)))
    return {
      reason: 'SASL: authentication failed (wrong user name or password)',
      hint: 'check kafka.sasl.username and kafka.sasl.password',
      verdict: true,
    };
  if (messages.some((m) => /TLS handshake failed/i.test(m)))
    // A listener without TLS resets the connection on our ClientHello.
    return {
      reason: 'TLS: the broker closed the connection during the TLS handshake (a listener without TLS?)',
      hint: 'set kafka.ssl: false for a plaintext listener, or use the TLS listener port',
      verdict: false,
    };
  // Closed between the TCP connect and the end of the handshake (TLS, SASL): a TLS listener that
  // got our plaintext, or a broker going down; kafkajs's "Connection closed by the server" alike.
  if (
    saslFailed ||
    messages.some((m) => /suitable SASL mechanism|Connection closed while waiting for ready/i.test(m))
  )
    return HANDSHAKE_CLOSED;
  return undefined;
}

/** The WalpurgeError for an error of the platformatic producer (see the rules above). */
export function classifyPlatformaticError(error: unknown, context: Context): WalpurgeError {
  if (error instanceof WalpurgeError) return error;
  const failures = platformaticFailures(error);
  const ids = kafkaErrorIds(failures);
  const detail = describePlatformaticError(error);
  const where = failedAddress(error) ?? context.brokers.join(', ');

  const security = platformaticSecurityFailure(failures) ?? securityFailure(error);
  if (security) {
    const retriable = context.connectedBefore && !security.verdict;
    return new WalpurgeError(
      retriable ? ErrorCode.KafkaUnavailable : ErrorCode.KafkaSecurity,
      `cannot connect to Kafka at ${where}: ${security.reason}`,
      { retriable, cause: error, hint: security.hint },
    );
  }
  if (ids.some((id) => TOO_LARGE.has(id)))
    return new WalpurgeError(
      ErrorCode.ConfigInvalid,
      `Kafka refused the change events as too large (${detail}): the broker's or topic's limit is below kafka.maxMessageBytes`,
      {
        retriable: false,
        cause: error,
        hint: `raise max.message.bytes of topic ${context.topic} (and the brokers' message.max.bytes) to at least kafka.maxMessageBytes, or lower kafka.maxMessageBytes`,
      },
    );
  if (ids.some((id) => NOT_AUTHORIZED.has(id)))
    return new WalpurgeError(ErrorCode.KafkaSecurity, `Kafka refused the listener's producer: ${detail}`, {
      retriable: false,
      cause: error,
      hint: `grant the listener's principal Write and Describe on topic ${context.topic}, and IdempotentWrite on the cluster (brokers before Kafka 3.0)`,
    });
  // Its metadata request words a missing topic as a UserError of its own, without Kafka's code.
  const unknownTopic =
    ids.includes('UNKNOWN_TOPIC_OR_PARTITION') ||
    failures.some(
      (failure) => failure.code === 'PLT_KFK_USER' && /^Unknown topic /.test(String(failure.message)),
    );
  if (unknownTopic && ids.every((id) => id === 'UNKNOWN_TOPIC_OR_PARTITION')) {
    // The sink creates its topic (or checks it) just before the producer connects: missing then is a
    // broker whose metadata lags (retried); missing at a send means deleted (we never auto-create
    // through produce requests), which no retry changes.
    const retriable = context.phase === 'connect';
    return new WalpurgeError(
      retriable ? ErrorCode.KafkaUnavailable : ErrorCode.ConfigInvalid,
      `Kafka topic "${context.topic}" does not exist: ${detail}`,
      {
        retriable,
        cause: error,
        hint: 'restart the listener (it creates its topic at start), or create the topic as walpurge would',
      },
    );
  }
  // Our own mistake in building a request (platformatic's UserError): retrying cannot change it.
  if (failures[0]?.code === 'PLT_KFK_USER')
    return new WalpurgeError(ErrorCode.Internal, `the Kafka producer refused the request: ${detail}`, {
      retriable: false,
      cause: error,
      hint: 'set kafka.producerClient: kafkajs, and report this',
    });
  // Down, refused, timed out, a leader moving, not enough in-sync replicas: an outage.
  const what =
    context.phase === 'connect'
      ? `cannot connect to Kafka (${where})`
      : 'Kafka did not acknowledge the change events';
  return new WalpurgeError(ErrorCode.KafkaUnavailable, `${what}: ${detail}`, {
    retriable: true,
    cause: error,
    hint: 'check kafka.brokers and that the brokers are up; walpurge keeps retrying and holds the replication slot meanwhile',
  });
}
