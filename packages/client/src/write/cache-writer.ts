import type { Cluster, Redis } from 'ioredis';
import { groupKeysBySlot } from '@walpurge/rules';
import { PayloadCodec, jsonSerializer, type Serializer } from '../read/serializer.js';
import { CACHE_PUT_SCRIPT, LuaScript } from '@walpurge/write-behind';

const cachePut = new LuaScript(CACHE_PUT_SCRIPT);

export interface CacheWriterOptions {
  /** The cache Redis; on a Cluster, keys are written per hash slot (see run). */
  redis: Redis | Cluster;
  /** config.redis.keyPrefix: prepended to every key, as the invalidator does. */
  keyPrefix: string;
  /** Default soft TTL of written entries (read side's freshness), ms. */
  ttlMs: number;
  serializer?: Serializer;
}

/** Lifetime of one write's entries, as the read side computes it for a fill. */
export interface EntryLifetime {
  /** Soft TTL, ms: the entry is fresh until then. */
  softTtlMs: number;
  /** Physical TTL, ms: soft TTL + stale-while-revalidate. */
  physicalTtlMs: number;
}

/** Writes rows into the cache in the read side's entry format, guarded by version. */
export class CacheWriter {
  private readonly codec: PayloadCodec<unknown>;

  constructor(private readonly options: CacheWriterOptions) {
    this.codec = new PayloadCodec(options.serializer ?? jsonSerializer);
  }

  /** Returns how many of the keys now hold this version (0 when newer values were already there). */
  async set(
    keys: readonly string[],
    value: unknown,
    version: string,
    lifetime?: EntryLifetime,
  ): Promise<number> {
    if (keys.length === 0) return 0;
    const payload = await this.codec.encode(value);
    return this.run(keys, version, 'set', payload, lifetime);
  }

  async delete(keys: readonly string[], version: string, lifetime?: EntryLifetime): Promise<number> {
    if (keys.length === 0) return 0;
    return this.run(keys, version, 'del', Buffer.alloc(0), lifetime);
  }

  /** The keys as stored in Redis (keyPrefix prepended). */
  fullKeys(keys: readonly string[]): string[] {
    return keys.map((key) => this.options.keyPrefix + key);
  }

  /** Best effort after a failure: whatever is cached for these keys can no longer be trusted. */
  async forget(keys: readonly string[]): Promise<void> {
    if (keys.length === 0) return;
    const full = keys.map((key) => this.options.keyPrefix + key);
    const groups = this.options.redis.isCluster ? groupKeysBySlot(full) : [full];
    await Promise.all(groups.map((group) => this.options.redis.unlink(...group)));
  }

  private async run(
    keys: readonly string[],
    version: string,
    op: 'set' | 'del',
    payload: Buffer,
    lifetime: EntryLifetime = { softTtlMs: this.options.ttlMs, physicalTtlMs: this.options.ttlMs },
  ): Promise<number> {
    const full = keys.map((key) => this.options.keyPrefix + key);
    // A script may only touch one hash slot of a cluster: one call per slot. Each key carries its
    // own version guard, so writing the groups one after the other keeps every key's outcome right;
    // keys sharing a hash tag (`user:{42}`, `user:{42}:profile`) change together, atomically.
    const groups = this.options.redis.isCluster ? groupKeysBySlot(full) : [full];
    const replies = await Promise.all(
      groups.map((group) =>
        cachePut.run(this.options.redis, group, [
          version,
          op,
          payload,
          lifetime.softTtlMs,
          lifetime.physicalTtlMs,
        ]),
      ),
    );
    return replies.reduce<number>((sum, reply) => sum + Number(reply), 0);
  }
}
