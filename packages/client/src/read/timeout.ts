/** Raised when Redis does not answer within the client's budget; the caller fails open to the loader. */
export class RedisTimeoutError extends Error {
  override readonly name = 'RedisTimeoutError';
}

/**
 * Bounds how long a cache read may wait on Redis. The command itself is not cancelled (Redis has no
 * such thing); a late reply is ignored. That is safe here because every write is a lease-checked
 * compare-and-set: a fill that lands late is still accepted only if no purge happened.
 */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  if (!Number.isFinite(ms) || ms <= 0) return promise;
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new RedisTimeoutError(`${what}: no reply from Redis within ${ms} ms`)),
      ms,
    );
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}
