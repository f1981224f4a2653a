import { createHash } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';

/** EVALSHA, falling back to EVAL when the server does not know the script (first use, restart). */
export class WriteScript {
  private readonly sha: string;

  constructor(private readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  async run(
    redis: Redis | Cluster,
    keys: readonly string[],
    args: ReadonlyArray<string | number | Buffer>,
  ): Promise<unknown> {
    try {
      return await redis.call('EVALSHA', this.sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return redis.call('EVAL', this.source, keys.length, ...keys, ...args);
    }
  }
}

/** Lua replies of `{ 'word', … }` as strings; anything else is a protocol bug. */
export function stringArrayReply(reply: unknown, what: string): string[] {
  if (!Array.isArray(reply) || !reply.every((item) => typeof item === 'string')) {
    throw new Error(`unexpected reply from ${what}: ${JSON.stringify(reply)}`);
  }
  return reply as string[];
}
