import type { Redis } from 'ioredis';

const PER_COMMAND = 1000;
const PER_ROUND_TRIP = 100;

/**
 * Runs `command` on the keys keyOf(from) … keyOf(to − 1), 1000 keys per command and 100 commands per
 * pipeline round trip: millions of keys in seconds, without one argument list too large for Redis.
 * Returns the sum of the integer replies.
 */
async function perKeyChunk(
  redis: Redis,
  from: number,
  to: number,
  keyOf: (i: number) => string,
  command: (pipeline: ReturnType<Redis['pipeline']>, keys: string[]) => void,
): Promise<number> {
  let sum = 0;
  for (let i = from; i < to; i += PER_COMMAND * PER_ROUND_TRIP) {
    const pipeline = redis.pipeline();
    for (let j = i; j < Math.min(to, i + PER_COMMAND * PER_ROUND_TRIP); j += PER_COMMAND) {
      const keys: string[] = [];
      for (let k = j; k < Math.min(to, j + PER_COMMAND); k++) keys.push(keyOf(k));
      command(pipeline, keys);
    }
    for (const [error, reply] of (await pipeline.exec()) ?? []) {
      if (error) throw error;
      if (typeof reply === 'number') sum += reply;
    }
  }
  return sum;
}

/** Sets keyOf(from) … keyOf(to − 1) to 'v' (pipelined MSETs). */
export async function writeKeys(
  redis: Redis,
  from: number,
  to: number,
  keyOf: (i: number) => string,
): Promise<void> {
  await perKeyChunk(redis, from, to, keyOf, (pipeline, keys) =>
    pipeline.mset(...keys.flatMap((key) => [key, 'v'])),
  );
}

/** How many of keyOf(from) … keyOf(to − 1) exist (pipelined EXISTS: exact keys, no keyspace scan). */
export function countExistingKeys(
  redis: Redis,
  from: number,
  to: number,
  keyOf: (i: number) => string,
): Promise<number> {
  return perKeyChunk(redis, from, to, keyOf, (pipeline, keys) => pipeline.exists(...keys));
}
