/** What to purge, per kind. Redis names are logical (the configured key prefix is applied by the purger). */
export interface RedisPurges {
  /** Exact keys, UNLINKed. */
  keys: string[];
  /** Redis glob patterns (row values already escaped), purged with SCAN MATCH + UNLINK. */
  patterns: string[];
  /** Tag names; see tagSetKey for the set layout. */
  tags: string[];
}

export interface CdnPurges {
  urls: string[];
  tags: string[];
  prefixes: string[];
}

export interface PurgeTargets {
  redis: RedisPurges;
  cdn: CdnPurges;
}

export const redisKinds = ['keys', 'patterns', 'tags'] as const;
export const cdnKinds = ['urls', 'tags', 'prefixes'] as const;
export type RedisKind = (typeof redisKinds)[number];
export type CdnKind = (typeof cdnKinds)[number];

export function emptyTargets(): PurgeTargets {
  return { redis: { keys: [], patterns: [], tags: [] }, cdn: { urls: [], tags: [], prefixes: [] } };
}

export function countTargets(targets: PurgeTargets): number {
  let total = 0;
  for (const kind of redisKinds) total += targets.redis[kind].length;
  for (const kind of cdnKinds) total += targets.cdn[kind].length;
  return total;
}

export function isEmptyTargets(targets: PurgeTargets): boolean {
  return countTargets(targets) === 0;
}

/**
 * Collects targets from many plans, sending each distinct entry once: this is the coalescing of a
 * batch (a hot row updated 500 times in a window is purged once). `added` counts entries before
 * de-duplication so callers can report the coalescing ratio.
 */
export class TargetAccumulator {
  private readonly redis = { keys: new Set<string>(), patterns: new Set<string>(), tags: new Set<string>() };
  private readonly cdn = { urls: new Set<string>(), tags: new Set<string>(), prefixes: new Set<string>() };
  added = 0;

  add(targets: PurgeTargets): void {
    for (const kind of redisKinds) {
      for (const entry of targets.redis[kind]) this.redis[kind].add(entry);
      this.added += targets.redis[kind].length;
    }
    for (const kind of cdnKinds) {
      for (const entry of targets.cdn[kind]) this.cdn[kind].add(entry);
      this.added += targets.cdn[kind].length;
    }
  }

  get unique(): number {
    let total = 0;
    for (const kind of redisKinds) total += this.redis[kind].size;
    for (const kind of cdnKinds) total += this.cdn[kind].size;
    return total;
  }

  toTargets(): PurgeTargets {
    return {
      redis: { keys: [...this.redis.keys], patterns: [...this.redis.patterns], tags: [...this.redis.tags] },
      cdn: { urls: [...this.cdn.urls], tags: [...this.cdn.tags], prefixes: [...this.cdn.prefixes] },
    };
  }
}
