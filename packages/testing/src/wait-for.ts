/**
 * Thrown from inside a `waitFor` callback to give up at once: for conditions that can never become
 * true (the process we are waiting on has exited), where polling until the deadline only hides the
 * real failure behind a timeout.
 */
export class WaitForAbortError extends Error {
  override readonly name = 'WaitForAbortError';
}

export interface WaitForOptions {
  timeoutMs?: number;
  intervalMs?: number;
}

/**
 * Polls `fn` until it returns something other than `undefined` / `false`.
 *
 * Errors thrown by `fn` count as "not yet" (a server that is still starting refuses connections),
 * and the last one is kept as the timeout error's `cause` so a failure says why, not just when.
 */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  opts: WaitForOptions = {},
): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const intervalMs = opts.intervalMs ?? 100;
  const started = Date.now();
  const deadline = started + timeoutMs;
  let lastError: unknown;
  let attempts = 0;

  for (;;) {
    attempts += 1;
    try {
      const value = await fn();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      if (err instanceof WaitForAbortError) throw err;
      lastError = err;
    }
    const now = Date.now();
    if (now >= deadline) {
      const reason = lastError === undefined ? '' : `; last error: ${describeError(lastError)}`;
      throw new Error(
        `Timed out after ${now - started} ms waiting for ${what} (${attempts} attempts${reason})`,
        {
          cause: lastError,
        },
      );
    }
    await sleep(Math.min(intervalMs, deadline - now));
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function describeError(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) {
    return err.errors.map(describeError).join('; ');
  }
  if (err instanceof Error) return err.message || err.name;
  return String(err);
}
