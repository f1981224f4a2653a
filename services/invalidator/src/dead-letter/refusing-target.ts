/**
 * Which purge target refused an event, remembered on the error itself: the purge executor knows
 * the target when a purge fails for good, the code that dead-letters the event only sees the error.
 * A WeakMap, so nothing about the error object changes for anyone else who inspects it.
 */
const refusedBy = new WeakMap<object, string>();

export function markRefusedBy(error: unknown, target: string): void {
  if (typeof error === 'object' && error !== null && !refusedBy.has(error)) refusedBy.set(error, target);
}

/** The target that refused, or `unknown` for an error no purge target raised. */
export function refusingTarget(error: unknown): string {
  return (typeof error === 'object' && error !== null && refusedBy.get(error)) || 'unknown';
}
