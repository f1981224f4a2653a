import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { CACHE_PURGE_REFUSED_SCRIPT, REFUSED_MARKER_TTL_MS } from '@walpurge/write-behind';
import {
  redisClusterSeed,
  redisTlsError,
  redisTlsOptions,
  refuseRedisTlsVerdict,
  type RedisConfig,
} from '@walpurge/config';

/**
 * Write-behind caches a value when it is accepted, before PostgreSQL has seen it. When PostgreSQL
 * refuses it for good, this drops it from the cache Redis (the keys are recorded on the pending
 * entry), so readers go back to the database instead of being served the refused value until TTL.
 * One key per call: in a Redis Cluster a row's keys may live in different slots.
 */
export class RefusedValuePurger {
  private readonly redis: Redis | Cluster;

  constructor(private readonly config: RedisConfig) {
    const base: RedisOptions = {
      // Fail fast: the caller retries through the job; a cache outage must not hold a flush slot.
      maxRetriesPerRequest: 1,
      connectTimeout: 5_000,
      retryStrategy: (attempt) => Math.min(100 * 2 ** attempt, 2_000),
    };
    if (config.cluster) {
      const { seed, redisOptions } = redisClusterSeed(config);
      this.redis = new Cluster([seed], { redisOptions: { ...base, ...redisOptions } });
    } else {
      this.redis = new Redis(config.url, { ...base, ...redisTlsOptions(config) });
    }
    // Errors surface on the purge call (counted and logged there); do not crash on 'error'.
    this.redis.on('error', () => undefined);
  }

  /**
   * Replaces the keys still holding `version` or an older write-behind value (and missing keys) by a
   * marker at `version` (see CACHE_PURGE_REFUSED_SCRIPT); returns how many.
   */
  async purge(keys: readonly string[], version: string): Promise<number> {
    let marked = 0;
    try {
      for (const key of keys)
        marked += Number(
          await this.redis.eval(CACHE_PURGE_REFUSED_SCRIPT, 1, key, version, String(REFUSED_MARKER_TTL_MS)),
        );
    } catch (error) {
      throw redisTlsError(error, this.config, true) ?? error;
    }
    return marked;
  }

  /** At the flusher's start: a certificate the cache Redis' TLS rejects stops it with one line. */
  async check(): Promise<void> {
    await refuseRedisTlsVerdict(this.redis, this.config);
  }

  async close(): Promise<void> {
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}
