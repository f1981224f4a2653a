import type { CacheRedis } from './cache-redis.js';
import { z } from 'zod';
import type { Logger, Registry } from '@walpurge/core';
import type { L1Options } from './l1-cache.js';
import type { TagPruningOptions } from './tag-pruner.js';
import type { RefreshOptions } from './refresher.js';
import type { CompressionOptions, Serializer } from './serializer.js';
import type { RowVersion } from './row-version.js';

export interface LeaseOptions {
  /** How long a lease blocks other fillers if its holder never fills (crash, hang), ms. Default 5,000. */
  ttlMs?: number;
  /** Longest a caller waits for another caller's fill before loading itself (without storing), ms. Default: ttlMs. */
  maxWaitMs?: number;
  /** First poll interval while waiting, ms; grows ×1.5 with jitter up to pollMaxMs. Default 10. */
  pollInitialMs?: number;
  /** Default 200. */
  pollMaxMs?: number;
}

export interface CacheClientOptions {
  /**
   * An ioredis connection or Cluster client (shared with the application), or a URL for a
   * connection the client owns.
   */
  redis: CacheRedis | string;
  /** With a URL: it names a seed node of a Redis Cluster (`redis.cluster` in walpurge.yaml). Default false. */
  cluster?: boolean;
  /** Prepended to every key; must equal `redis.keyPrefix` in walpurge.yaml so the invalidator purges the same keys. */
  keyPrefix: string;
  /** In-process cache in front of Redis; off unless given (it needs one extra Redis connection). */
  l1?: L1Options | boolean;
  leases?: LeaseOptions;
  /** Removal of tag-set members whose entry is gone; `false` turns it off. Default { everyFills: 100, pageSize: 200 }. */
  tagPruning?: TagPruningOptions | false;
  serializer?: Serializer;
  compression?: CompressionOptions;
  /** Background re-loading of keys read with `refresh: 'on-invalidate'` (needs `l1`); see RefreshOptions. */
  refresh?: RefreshOptions;
  /** XFetch aggressiveness: 1 (default) as in the paper, larger refreshes earlier, 0 turns it off. */
  earlyRefreshBeta?: number;
  /** TTLs are shortened at random by up to this fraction (0..1). Default 0.1. */
  ttlJitter?: number;
  /** Budget for each Redis round trip before failing open to the loader, ms. Default 250. */
  redisTimeoutMs?: number;
  /** Share one in-flight lookup among concurrent get() calls of the same key in this process. Default true. */
  coalesce?: boolean;
  registry?: Registry;
  logger?: Logger;
  /** Injected for tests: local clock (ms) and uniform random in [0, 1). */
  now?: () => number;
  random?: () => number;
}

/** `T`: the loader's value type, which `version` receives. */
export interface GetOptions<T = unknown> {
  /** Seconds the value is fresh (fractions allowed), like Cache-Control max-age. */
  ttl: number;
  /** Seconds after `ttl` during which the stale value is served while one caller refreshes it. Default 0. */
  staleWhileRevalidate?: number;
  /** Tag names (as in the rules' `redis.tags`) whose purge must remove this entry. */
  tags?: readonly string[];
  /** Overrides `leases.ttlMs` for this key (a loader known to be slow). */
  leaseTtlMs?: number;
  /**
   * Versioned namespaces (as in the rules' `redis.namespaces`): the entry is stored under a key
   * composed from their current versions, so a bump of any of them makes it unreachable at once.
   */
  namespaces?: readonly string[];
  /**
   * `'on-invalidate'` marks a hot key: when this process learns the key was purged, it re-loads it
   * in the background through the lease path, so the next reader usually hits. Needs `l1` (the
   * purge is learnt from its invalidation tracking). Default: none.
   */
  refresh?: 'on-invalidate';
  /**
   * The version of the row the loaded value came from: the column named by the rule's `version`
   * (a counter, or `updated_at`). Stored beside the value (entry field `ver`) so the consistency
   * observer can tell a stale entry from a current one. Dates are stored as ISO-8601 (milliseconds:
   * prefer a counter, or the column selected as text), integers as decimal text, strings as given.
   * `null`/`undefined` stores no version. A function that throws or returns something unusable does
   * not fail the read: the value is cached without a version and counted in
   * `walpurge_client_fills_without_version_total{reason}`.
   */
  // Method syntax on purpose: the client keeps options of many value types side by side (the
  // refresher's hot keys), and a method parameter stays assignable from GetOptions<T> to GetOptions.
  version?(value: T): RowVersion;
}

const nonNegative = z.number().finite().nonnegative();
const positive = z.number().finite().positive();

/** The numeric knobs, checked once at construction so a typo fails loudly instead of caching forever. */
export const NumericOptions = z.object({
  keyPrefix: z.string(),
  earlyRefreshBeta: nonNegative.default(1),
  ttlJitter: z.number().min(0).max(1).default(0.1),
  redisTimeoutMs: positive.default(250),
  coalesce: z.boolean().default(true),
  leases: z
    .object({
      ttlMs: positive.default(5_000),
      maxWaitMs: nonNegative.optional(),
      pollInitialMs: positive.default(10),
      pollMaxMs: positive.default(200),
    })
    .default({ ttlMs: 5_000, pollInitialMs: 10, pollMaxMs: 200 }),
  l1: z
    .union([
      z.boolean(),
      z.object({
        maxEntries: positive.int().optional(),
        maxBytes: positive.int().optional(),
        maxStalenessMs: nonNegative.optional(),
      }),
    ])
    .default(false),
  refresh: z
    .object({
      concurrency: positive.int().default(4),
      ratePerSecond: positive.default(50),
      idleTimeoutMs: positive.default(300_000),
      maxKeys: positive.int().default(10_000),
      postPurgeWindowMs: positive.default(10_000),
    })
    .default({
      concurrency: 4,
      ratePerSecond: 50,
      idleTimeoutMs: 300_000,
      maxKeys: 10_000,
      postPurgeWindowMs: 10_000,
    }),
  compression: z.object({ algorithm: z.enum(['gzip', 'brotli']), thresholdBytes: nonNegative }).optional(),
  tagPruning: z
    .union([
      z.literal(false),
      z.object({ everyFills: positive.int().default(100), pageSize: positive.int().default(200) }),
    ])
    .default({ everyFills: 100, pageSize: 200 }),
});
export type NumericOptions = z.infer<typeof NumericOptions>;
