/**
 * Probabilistic early expiration ("XFetch", Vattani, Chierichetti & Lowenstein, VLDB 2015): each
 * reader recomputes a little before expiry with a probability that grows as expiry approaches and
 * with how long the value took to compute, so exactly-at-expiry stampedes do not happen and slow
 * values start refreshing earlier than cheap ones.
 *
 * Refresh now when  delta · beta · −ln(U) ≥ remaining,  U uniform in (0, 1].
 * beta = 1 is the paper's optimum; > 1 refreshes earlier, 0 disables early refresh.
 */
export function shouldRefreshEarly(input: {
  remainingMs: number;
  deltaMs: number;
  beta: number;
  /** Uniform in [0, 1); injected so tests are deterministic. */
  random: () => number;
}): boolean {
  const { remainingMs, deltaMs, beta } = input;
  if (remainingMs <= 0) return true;
  if (beta <= 0 || deltaMs <= 0) return false;
  const u = 1 - input.random(); // (0, 1]: ln never sees 0
  return deltaMs * beta * -Math.log(u) >= remainingMs;
}

/**
 * TTL with jitter: shortened by up to `jitter` (a fraction) at random, never lengthened, so entries
 * filled together (after a deploy, a purge of a tag) do not all expire in the same second, and the
 * configured TTL stays an upper bound.
 */
export function jitteredTtlMs(ttlMs: number, jitter: number, random: () => number): number {
  if (jitter <= 0) return Math.max(1, Math.round(ttlMs));
  const factor = 1 - Math.min(1, jitter) * random();
  return Math.max(1, Math.round(ttlMs * factor));
}
