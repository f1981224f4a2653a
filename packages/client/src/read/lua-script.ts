import { createHash } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';

/**
 * EVALSHA with a fallback to EVAL when the server does not know the script yet (first use, restart,
 * SCRIPT FLUSH, failover). Binary-safe both ways: arguments may be Buffers and bulk replies come back
 * as Buffers, so compressed payloads survive untouched.
 */
export class LuaScript {
  private readonly sha: string;

  constructor(private readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  async run(redis: Redis | Cluster, keys: string[], args: Array<string | Buffer | number>): Promise<unknown> {
    try {
      return await redis.callBuffer('EVALSHA', this.sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return redis.callBuffer('EVAL', this.source, keys.length, ...keys, ...args);
    }
  }
}
