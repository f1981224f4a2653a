import {
  ErrorCode,
  WalpurgeError,
  errorChain,
  tlsError,
  errorMessage,
  redactSecrets,
  type TlsAttempt,
  type TlsSettings,
} from '@walpurge/core';

const REASONS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host not found',
  ETIMEDOUT: 'connection timed out',
  ECONNRESET: 'connection reset',
  EHOSTUNREACH: 'host unreachable',
};

interface Failure {
  code?: unknown;
  address?: unknown;
  port?: unknown;
  broker?: unknown;
  name?: unknown;
}

// kafkajs wraps twice, AggregateError holds one per address tried.
const chain = (error: unknown): Failure[] => errorChain<Failure>(error);

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
    throw connectionReason(error) ? kafkaUnavailable(error, brokers) : error;
  }
}

export function redisUnavailable(
  error: unknown,
  what: string,
  address: string | undefined,
  tlsSettings: TlsSettings,
  { attempt }: { attempt?: TlsAttempt } = {},
): WalpurgeError {
  const where = address ?? socketAddress(error) ?? 'the configured address';
  const tls = tlsError(error, ErrorCode.RedisUnavailable, {
    what,
    address: where,
    settings: tlsSettings,
    ...(attempt ? { attempt } : {}),
  });
  if (tls) return tls;
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
  if (isKafkaError(error) && connectionReason(error)) return kafkaUnavailable(error);
  return undefined;
}
