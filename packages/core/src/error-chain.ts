/** The fields walpurge reads from an error and its causes (Node socket errors, kafkajs, ioredis). */
export interface ChainedFailure {
  code?: unknown;
  address?: unknown;
  port?: unknown;
  /** kafkajs: the one broker (host:port) a connection error is about. */
  broker?: unknown;
  /** Set by @walpurge/kafka's clients on a failed connect(): the configured brokers. */
  brokers?: unknown;
  name?: unknown;
  message?: unknown;
  cause?: unknown;
  errors?: unknown;
}

/** The error and its causes, breadth first (kafkajs wraps twice, AggregateError holds one per address). */
export function errorChain(error: unknown): ChainedFailure[] {
  const out: ChainedFailure[] = [];
  const queue: unknown[] = [error];
  while (queue.length > 0 && out.length < 10) {
    const next = queue.shift();
    if (typeof next !== 'object' || next === null) continue;
    const failure = next as ChainedFailure;
    out.push(failure);
    if (failure.cause) queue.push(failure.cause);
    if (Array.isArray(failure.errors)) queue.push(...(failure.errors as unknown[]));
  }
  return out;
}

/**
 * host:port an error names: the one broker that failed (anywhere in the chain) before the configured
 * list attached on the outside, before a socket's address.
 */
export function failedAddress(error: unknown): string | undefined {
  const failures = errorChain(error);
  for (const failure of failures) if (typeof failure.broker === 'string') return failure.broker;
  for (const failure of failures)
    if (Array.isArray(failure.brokers) && failure.brokers.length > 0) return failure.brokers.join(', ');
  for (const failure of failures)
    if (typeof failure.address === 'string' && failure.port !== undefined)
      return `${failure.address}:${String(failure.port)}`;
  return undefined;
}
