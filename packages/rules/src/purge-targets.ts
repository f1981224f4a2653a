import { namespaceVersion, UNORDERED_NAMESPACE_VERSION } from './namespace.js';

/** What to purge, per kind. Redis names are logical (the configured key prefix is applied by the purger). */
export interface RedisPurges {
  /** Exact keys, UNLINKed. */
  keys: string[];
  /** Redis glob patterns (row values already escaped), purged with SCAN MATCH + UNLINK. */
  patterns: string[];
  /** Tag names; see tagSetKey for the set layout. */
  tags: string[];
  /** Namespaces whose version is bumped (see namespace.ts). */
  namespaces: string[];
  /**
   * The version each namespace is bumped to: the highest commit LSN (namespaceVersion) among the
   * events of the batch that bump it. Set by TargetAccumulator when its events carry LSNs.
   */
  namespaceVersions?: Record<string, string>;
  /**
   * Keys of rows the write-behind flusher itself committed (CDC echo, see write-echo.ts): each is
   * purged only where the cache holds an older version than `version`. Never also in `keys`.
   */
  versioned?: VersionedKey[];
}

export interface VersionedKey {
  key: string;
  /** The version the flusher committed (decimal digits). */
  version: string;
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

export const redisKinds = ['keys', 'patterns', 'tags', 'namespaces'] as const;
export const cdnKinds = ['urls', 'tags', 'prefixes'] as const;
export type RedisKind = (typeof redisKinds)[number];
export type CdnKind = (typeof cdnKinds)[number];

export function emptyTargets(): PurgeTargets {
  return {
    redis: { keys: [], patterns: [], tags: [], namespaces: [] },
    cdn: { urls: [], tags: [], prefixes: [] },
  };
}

export function countTargets(targets: PurgeTargets): number {
  let total = 0;
  for (const kind of redisKinds) total += targets.redis[kind].length;
  for (const kind of cdnKinds) total += targets.cdn[kind].length;
  return total + (targets.redis.versioned?.length ?? 0);
}

export function isEmptyTargets(targets: PurgeTargets): boolean {
  return countTargets(targets) === 0;
}

/**
 * Collects targets from many plans, sending each distinct entry once: this is the coalescing of a
 * batch (a hot row updated 500 times in a window is purged once). `added` counts entries before
 * de-duplication so callers can count entries planned and sent (their quotient is the coalescing).
 */
export class TargetAccumulator {
  private readonly redis = {
    keys: new Set<string>(),
    patterns: new Set<string>(),
    tags: new Set<string>(),
    namespaces: new Set<string>(),
  };
  private readonly cdn = { urls: new Set<string>(), tags: new Set<string>(), prefixes: new Set<string>() };
  /** Echo keys → highest version committed for them in this batch. */
  private readonly versioned = new Map<string, bigint>();
  /** Namespaces → highest namespace version (fixed-width hex, so string order) of this batch. */
  private readonly namespaceVersions = new Map<string, string>();
  added = 0;

  /**
   * `echoVersion`: the targets come from the write-behind flusher's own commit of that version, so
   * their exact keys are version-guarded (see write-echo.ts) unless another event of the batch
   * purges them unconditionally. `lsn`: the commit LSN of the event the targets come from, the
   * version its namespaces are bumped to.
   */
  add(targets: PurgeTargets, echoVersion?: string, lsn?: string, lsnIsCommit = true): void {
    if (lsn !== undefined && targets.redis.namespaces.length > 0) {
      // Without a commit LSN the bump cannot be ordered: it always bumps, and so does the batch's.
      const version = lsnIsCommit ? namespaceVersion(lsn) : UNORDERED_NAMESPACE_VERSION;
      for (const namespace of targets.redis.namespaces) {
        const previous = this.namespaceVersions.get(namespace);
        if (previous === UNORDERED_NAMESPACE_VERSION) continue;
        if (previous === undefined || version === UNORDERED_NAMESPACE_VERSION || previous < version)
          this.namespaceVersions.set(namespace, version);
      }
    }
    for (const kind of redisKinds) {
      if (kind === 'keys' && echoVersion !== undefined) {
        for (const key of targets.redis.keys) {
          const previous = this.versioned.get(key);
          // The newest version guards: a cache entry older than the row's latest committed write is stale.
          if (previous === undefined || previous < BigInt(echoVersion))
            this.versioned.set(key, BigInt(echoVersion));
        }
      } else {
        for (const entry of targets.redis[kind]) this.redis[kind].add(entry);
      }
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
    return total + this.versionedOnly().length;
  }

  toTargets(): PurgeTargets {
    const versioned = this.versionedOnly();
    return {
      redis: {
        keys: [...this.redis.keys],
        patterns: [...this.redis.patterns],
        tags: [...this.redis.tags],
        namespaces: [...this.redis.namespaces],
        ...(versioned.length > 0 ? { versioned } : {}),
        ...(this.namespaceVersions.size > 0
          ? { namespaceVersions: Object.fromEntries(this.namespaceVersions) }
          : {}),
      },
      cdn: { urls: [...this.cdn.urls], tags: [...this.cdn.tags], prefixes: [...this.cdn.prefixes] },
    };
  }

  /** Echo keys no other event of the batch purges unconditionally. */
  private versionedOnly(): VersionedKey[] {
    const out: VersionedKey[] = [];
    for (const [key, version] of this.versioned)
      if (!this.redis.keys.has(key)) out.push({ key, version: version.toString() });
    return out;
  }
}
