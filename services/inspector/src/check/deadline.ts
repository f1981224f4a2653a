/** How long one read of a check (Redis entry, PostgreSQL row) may take before the check gives up. */
export const READ_TIMEOUT_MS = 2_000;

/**
 * `promise`, or a rejection after `ms`: a frozen link (a Redis or PostgreSQL that stopped answering
 * without closing the connection) must fail the check, counted as an error, not hang it and with it
 * the in-flight slot it holds against inspect.maxPendingChecks.
 */
export function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took more than ${ms} ms`)), ms);
    timer.unref();
  });
  // The losing read may still settle later: its rejection is handled here, never unhandled.
  promise.catch(() => undefined);
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}
