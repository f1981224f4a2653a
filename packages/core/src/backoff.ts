import { ErrorCode, WalpurgeError } from './errors.js';

export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  multiplier?: number;
  /** 0..1: share of the delay that is randomised ("full jitter" at 1) so restarts do not stampede. */
  jitter?: number;
  random?: () => number;
}

export const defaultBackoff: BackoffOptions = { initialMs: 200, maxMs: 30_000, multiplier: 2, jitter: 0.5 };

/** Delay before retry number `attempt` (0-based). Pure, so tests can check it without waiting. */
export function backoffDelay(attempt: number, options: BackoffOptions = defaultBackoff): number {
  const multiplier = options.multiplier ?? 2;
  const jitter = options.jitter ?? 0.5;
  const random = options.random ?? Math.random;
  const base = Math.min(options.maxMs, options.initialMs * multiplier ** Math.max(0, attempt));
  return Math.round(base * (1 - jitter) + base * jitter * random());
}

/** Sleeps, but wakes early (rejecting) when the signal aborts, so shutdown never waits out a backoff. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new WalpurgeError(ErrorCode.Aborted, 'aborted'));
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(new WalpurgeError(ErrorCode.Aborted, 'aborted'));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export interface RetryOptions extends Partial<BackoffOptions> {
  signal?: AbortSignal;
  /** Give up after this many attempts (default: never, until aborted or a non-retriable error). */
  maxAttempts?: number;
  isRetriable?: (error: unknown) => boolean;
  onRetry?: (error: unknown, attempt: number, delayMs: number) => void;
}

/** Runs `fn` until it succeeds, a non-retriable error occurs, attempts run out or the signal aborts. */
export async function retry<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const backoff: BackoffOptions = { ...defaultBackoff, ...options };
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await fn(attempt);
    } catch (error) {
      const retriable = options.isRetriable ? options.isRetriable(error) : true;
      const exhausted = options.maxAttempts !== undefined && attempt + 1 >= options.maxAttempts;
      if (!retriable || exhausted || options.signal?.aborted) throw error;
      const delay = backoffDelay(attempt, backoff);
      options.onRetry?.(error, attempt + 1, delay);
      await sleep(delay, options.signal);
    }
  }
}
