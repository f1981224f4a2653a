/**
 * Finds the items a target rejects for good (poison) by bisection. `attempt` runs a subset; when it
 * rejects with a non-fatal error the subset is split in two halves, each tried in turn, down to the
 * single item that is then handed to `onPoison`. One poison item among N costs 1 + 2·⌈log2 N⌉
 * attempts instead of N + 1, which matters when each attempt is expensive (a pattern purge waits for
 * a keyspace sweep). Purges are idempotent, so repeating a half that holds good items is harmless.
 *
 * `isFatal` errors (retriable failures, an aborted stop) are rethrown at once: the whole batch is
 * then retried or abandoned uncommitted, never split, since splitting cannot cure them.
 * Items keep their order: the left half is settled before the right one, and `onPoison` is called
 * in item order. Returns the number of attempts made.
 */
export async function isolatePoison<T>(
  items: readonly T[],
  attempt: (part: readonly T[]) => Promise<void>,
  onPoison: (item: T, error: unknown) => Promise<void>,
  isFatal: (error: unknown) => boolean,
): Promise<number> {
  let attempts = 0;
  const settle = async (part: readonly T[]): Promise<void> => {
    if (part.length === 0) return;
    attempts += 1;
    try {
      await attempt(part);
      return;
    } catch (error) {
      if (isFatal(error)) throw error;
      if (part.length === 1) {
        await onPoison(part[0] as T, error);
        return;
      }
    }
    const middle = Math.ceil(part.length / 2);
    await settle(part.slice(0, middle));
    await settle(part.slice(middle));
  };
  await settle(items);
  return attempts;
}
