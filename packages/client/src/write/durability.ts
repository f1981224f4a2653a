import type { Redis } from 'ioredis';
import { ErrorCode, WalpurgeError, errorMessage } from '@walpurge/core';

/**
 * What "accepted" means for a write-behind write (flusher.acceptDurability).
 * - primary: the queue Redis primary holds it (its AOF fsyncs within a second): a failover to a
 *   replica that had not caught up loses it.
 * - replica: WAIT until `replicas` replicas hold it (survives a failover to one of them).
 * - aof: WAITAOF until the primary's AOF (and `replicas` replicas' AOFs) fsynced it (Redis ≥ 7.2):
 *   survives a crash and restart of the primary.
 */
export type AcceptDurability =
  { mode: 'primary' } | { mode: 'replica' | 'aof'; replicas: number; timeoutMs: number };

/**
 * Waits for the writes this connection has sent so far (the accept script, the job) to be as
 * durable as asked. WAIT/WAITAOF cover every earlier write of the connection, and the version clock
 * is written in the same script, so a promoted replica also knows the versions already handed out.
 */
export async function awaitDurable(
  redis: Redis,
  durability: AcceptDurability,
  version: string,
): Promise<void> {
  if (durability.mode === 'primary') return;
  const { replicas, timeoutMs } = durability;
  if (durability.mode === 'replica') {
    const acknowledged = Number(await redis.call('WAIT', replicas, timeoutMs));
    if (acknowledged < replicas)
      throw notDurable(version, `${acknowledged} of ${replicas} replicas`, timeoutMs);
    return;
  }
  let reply: unknown;
  try {
    reply = await redis.call('WAITAOF', 1, replicas, timeoutMs);
  } catch (error) {
    if (/unknown command|appendonly is disabled/i.test(errorMessage(error))) {
      throw new WalpurgeError(
        ErrorCode.ConfigInvalid,
        `flusher.acceptDurability.mode aof cannot be honoured by the queue Redis: ${errorMessage(error)}`,
        { hint: 'WAITAOF needs Redis 7.2 or newer with appendonly yes; or use mode replica' },
      );
    }
    throw error;
  }
  const [local, remote] = Array.isArray(reply) ? reply.map(Number) : [0, 0];
  if (local !== 1 || (remote ?? 0) < replicas) {
    throw notDurable(
      version,
      `local AOF ${local === 1 ? 'fsynced' : 'not fsynced'}, ${remote ?? 0} of ${replicas} replica AOFs`,
      timeoutMs,
    );
  }
}

function notDurable(version: string, reached: string, timeoutMs: number): WalpurgeError {
  return new WalpurgeError(
    ErrorCode.WriteBehindNotDurable,
    `write-behind write (version ${version}) is on the queue Redis primary but not durable as configured within ${timeoutMs} ms: ${reached}`,
    {
      retriable: true,
      hint: 'it is cached and will be flushed unless the primary fails now; retrying writes it again with a newer version',
    },
  );
}
