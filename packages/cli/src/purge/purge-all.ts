import type { Cluster, Redis } from 'ioredis';
import type { WalpurgeConfig } from '@walpurge/config';
import { ErrorCode, WalpurgeError, errorMessage, isWalpurgeError, type Logger } from '@walpurge/core';
import { createPurgers, type Purger } from '@walpurge/invalidator';
import {
  compileRules,
  emptyTargets,
  escapeGlob,
  NAMESPACE_KEY_SEGMENT,
  TAG_SET_SEGMENT,
  UNORDERED_NAMESPACE_VERSION,
  type PurgeTargets,
} from '@walpurge/rules';
import { openCacheRedis } from './cache-redis.js';
import { planKeySpace, type Unpurgeable } from './key-space.js';
import { unsupported } from './target-support.js';
import { scanKeys } from './scan-keys.js';

export interface PurgeAllOptions {
  config: WalpurgeConfig;
  logger: Logger;
  /** Count and sample what would be purged (SCAN only); nothing is deleted or sent to a CDN. */
  dryRun?: boolean;
  /** Stops between SCAN pages and purge calls. */
  signal?: AbortSignal;
  /** One line per step, for a CLI to show that work goes on. */
  onProgress?: (line: string) => void;
}

export interface PatternSummary {
  pattern: string;
  /** Dry run: keys matching now (SCAN may count a key twice). */
  matched?: number;
  /** Dry run: the first few keys found. */
  sample: string[];
}

export interface TagPatternSummary {
  pattern: string;
  /** Tag sets found (and purged, unless a dry run). */
  tagSets: number;
  sample: string[];
}

export interface NamespacePatternSummary {
  pattern: string;
  /** Version keys found (and bumped, unless a dry run), as namespace names. */
  versions: number;
  sample: string[];
}

export interface NamespaceBumpSummary {
  /** Field-free namespaces, bumped as written. */
  exact: string[];
  patterns: NamespacePatternSummary[];
  /** Version keys given a fresh value (0 in a dry run). */
  bumped: number;
}

export interface PurgeAllSummary {
  dryRun: boolean;
  /** Purge targets used: `redis`, `cloudflare`, … */
  targets: string[];
  redis: {
    keys: string[];
    patterns: PatternSummary[];
    tags: string[];
    tagPatterns: TagPatternSummary[];
    namespaces: NamespaceBumpSummary;
  };
  cdn: { urls: string[]; tags: string[]; prefixes: string[] };
  /** Every template (or template × target) whose key space was not purged, with why. */
  unpurgeable: Unpurgeable[];
  /** True when nothing is unpurgeable: every entry the rules can derive is gone (or would be). */
  complete: boolean;
}

const SAMPLE = 5;
/** Tag sets (and namespaces) handed to the purger per call: bounded memory whatever their number. */
const TAG_PAGE = 500;

async function purgeOrExplain(
  purger: Purger,
  targets: PurgeTargets,
  signal: AbortSignal,
): ReturnType<Purger['purge']> {
  try {
    return await purger.purge(targets, { signal });
  } catch (error) {
    if (signal.aborted || isWalpurgeError(error)) throw error;
    throw new WalpurgeError(ErrorCode.PurgeFailed, `purge on ${purger.name} failed: ${errorMessage(error)}`, {
      cause: error,
      hint: 'purges are idempotent: run the command again once the target is healthy',
    });
  }
}

/**
 * Purges every rule's whole key space (see planKeySpace for what that honestly means per kind),
 * Redis first, then CDNs (a CDN refilled from a stale Redis would cache stale data again). Opens its
 * own connections from the config and closes them. Templates that cannot be purged wholesale are
 * never skipped silently: they are returned in `unpurgeable` and `complete` is false.
 */
export async function purgeAll(options: PurgeAllOptions): Promise<PurgeAllSummary> {
  const { config, logger } = options;
  const signal = options.signal ?? new AbortController().signal;
  const dryRun = options.dryRun === true;
  const progress = options.onProgress ?? ((): void => {});
  const rules = compileRules(config.rules);
  const space = planKeySpace(rules.rules);
  const backoff = {
    initialMs: config.invalidator.retryInitialMs,
    maxMs: config.invalidator.retryMaxMs,
    multiplier: 2,
    jitter: 0.5,
  };
  const purgers = createPurgers(config, rules, logger, backoff);
  const redisPurger = purgers.find((purger) => purger.stage === 'redis');
  const cdnPurgers = purgers.filter((purger) => purger.stage === 'cdn');
  const unpurgeable = [
    ...space.unpurgeable,
    ...space.placed.flatMap((placed) => unsupported(placed, purgers)),
  ];
  const summary: PurgeAllSummary = {
    dryRun,
    targets: purgers.map((purger) => purger.name),
    redis: {
      keys: [],
      patterns: [],
      tags: [],
      tagPatterns: [],
      namespaces: { exact: [], patterns: [], bumped: 0 },
    },
    cdn: cdnPurgers.length > 0 ? space.cdn : { urls: [], tags: [], prefixes: [] },
    unpurgeable,
    complete: unpurgeable.length === 0,
  };
  let client: Redis | Cluster | undefined;
  try {
    if (redisPurger && config.redis) {
      client = await openCacheRedis(config.redis, logger);
      await purgeRedis(client, redisPurger, config.redis.keyPrefix, config.invalidator.redisScanCount);
    }
    const cdnTargets: PurgeTargets = { redis: emptyTargets().redis, cdn: summary.cdn };
    for (const purger of cdnPurgers) {
      if (dryRun || purger.count(cdnTargets) === 0) continue;
      progress(`purging CDN entries on ${purger.name}`);
      await purgeOrExplain(purger, cdnTargets, signal);
    }
    return summary;
  } finally {
    client?.disconnect();
    await Promise.all(purgers.map((purger) => purger.close().catch(() => {})));
  }

  async function purgeRedis(
    redis: Redis | Cluster,
    purger: Purger,
    keyPrefix: string,
    scanCount: number,
  ): Promise<void> {
    const prefix = escapeGlob(keyPrefix);
    summary.redis.keys = space.redis.keys;
    summary.redis.tags = space.redis.tags;
    for (const pattern of space.redis.patterns) {
      const entry: PatternSummary = { pattern, sample: [] };
      summary.redis.patterns.push(entry);
      if (!dryRun) continue;
      entry.matched = 0;
      for await (const keys of scanKeys(redis, prefix + pattern, scanCount, signal)) {
        entry.matched += keys.length;
        if (entry.sample.length < SAMPLE) entry.sample.push(...keys.slice(0, SAMPLE - entry.sample.length));
      }
    }
    if (!dryRun) {
      const targets = emptyTargets();
      targets.redis.keys = space.redis.keys;
      targets.redis.tags = space.redis.tags;
      targets.redis.patterns = space.redis.patterns;
      if (purger.count(targets) > 0) {
        progress(
          `purging ${space.redis.keys.length} key(s), ${space.redis.tags.length} tag(s) and ${space.redis.patterns.length} pattern(s) on redis`,
        );
        await purgeOrExplain(purger, targets, signal);
      }
    }
    // Tag sets are keys too: SCAN finds every set of a templated tag, a page at a time.
    for (const pattern of space.redis.tagPatterns) {
      progress(`${dryRun ? 'counting' : 'purging'} tag sets matching ${pattern}`);
      const found = await scanPaged(redis, keyPrefix + TAG_SET_SEGMENT, pattern, scanCount, async (tags) => {
        if (dryRun) return;
        const targets = emptyTargets();
        targets.redis.tags = tags;
        await purgeOrExplain(purger, targets, signal);
      });
      summary.redis.tagPatterns.push({ pattern, tagSets: found.count, sample: found.sample });
    }
    await bumpNamespaces(redis, purger, keyPrefix, scanCount);
  }

  /**
   * Gives every namespace the rules can derive a fresh version, UNORDERED (a fresh random epoch, LSN
   * part 0; see @walpurge/rules namespace.ts): every entry stored before is unreachable from then on,
   * and a value never repeats, so no later replay of an older change can make one reachable again.
   * A WAL position is deliberately not used: versions may be ahead of this server's (a restored or
   * moved database), and a commit in flight below it would have its own bump skipped.
   * Bumps go through the Redis purger, as the invalidator's do (same script, same errors).
   * Templated namespaces: SCAN finds the existing version keys. A namespace without a version key
   * needs no bump: its next reader creates one holding a fresh random epoch (NAMESPACE_INIT_SCRIPT),
   * under which no old entry was stored, so old entries stay unreachable.
   */
  async function bumpNamespaces(
    redis: Redis | Cluster,
    purger: Purger,
    keyPrefix: string,
    scanCount: number,
  ): Promise<void> {
    const bumps = summary.redis.namespaces;
    bumps.exact = space.redis.namespaces;
    const bump = async (namespaces: readonly string[]): Promise<void> => {
      if (namespaces.length === 0 || dryRun) return;
      const targets = emptyTargets();
      targets.redis.namespaces = [...namespaces];
      targets.redis.namespaceVersions = Object.fromEntries(
        namespaces.map((namespace) => [namespace, UNORDERED_NAMESPACE_VERSION]),
      );
      await purgeOrExplain(purger, targets, signal);
      bumps.bumped += namespaces.length;
    };
    if (space.redis.namespaces.length > 0 && !dryRun)
      progress(`bumping ${space.redis.namespaces.length} namespace(s) on redis`);
    for (let start = 0; start < space.redis.namespaces.length; start += TAG_PAGE)
      await bump(space.redis.namespaces.slice(start, start + TAG_PAGE));
    for (const pattern of space.redis.namespacePatterns) {
      progress(`${dryRun ? 'counting' : 'bumping'} namespace versions matching ${pattern}`);
      const found = await scanPaged(redis, keyPrefix + NAMESPACE_KEY_SEGMENT, pattern, scanCount, bump);
      bumps.patterns.push({ pattern, versions: found.count, sample: found.sample });
    }
  }

  /**
   * SCANs for the keys `<prefix><pattern>` and hands their names (without `prefix`) to `page`, at
   * most TAG_PAGE at a time, so memory stays bounded whatever their number. How many, and a sample.
   */
  async function scanPaged(
    redis: Redis | Cluster,
    prefix: string,
    pattern: string,
    scanCount: number,
    page: (names: string[]) => Promise<void>,
  ): Promise<{ count: number; sample: string[] }> {
    const found = { count: 0, sample: [] as string[] };
    let names: string[] = [];
    for await (const keys of scanKeys(redis, escapeGlob(prefix) + pattern, scanCount, signal)) {
      const batch = keys.map((key) => key.slice(prefix.length));
      found.count += batch.length;
      if (found.sample.length < SAMPLE) found.sample.push(...batch.slice(0, SAMPLE - found.sample.length));
      names.push(...batch);
      if (names.length >= TAG_PAGE) {
        await page(names);
        names = [];
      }
    }
    if (names.length > 0) await page(names);
    return found;
  }
}
