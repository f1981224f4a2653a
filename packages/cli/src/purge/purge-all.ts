import type { Cluster, Redis } from 'ioredis';
import type { WalpurgeConfig } from '@walpurge/config';
import { ErrorCode, WalpurgeError, errorMessage, isWalpurgeError, type Logger } from '@walpurge/core';
import { connectRedis, createPurgers, type Purger } from '@walpurge/invalidator';
import { compileRules, emptyTargets, escapeGlob, TAG_SET_SEGMENT, type PurgeTargets } from '@walpurge/rules';
import { redisUnavailable } from '../live/connection-errors.js';
import { describeRedis } from '../live/queue-redis.js';
import { planKeySpace, type Placed, type Unpurgeable, type WholesaleKind } from './key-space.js';
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

export interface PurgeAllSummary {
  dryRun: boolean;
  /** Purge targets used: `redis`, `cloudflare`, … */
  targets: string[];
  redis: { keys: string[]; patterns: PatternSummary[]; tags: string[]; tagPatterns: TagPatternSummary[] };
  cdn: { urls: string[]; tags: string[]; prefixes: string[] };
  /** Every template (or template × target) whose key space was not purged, with why. */
  unpurgeable: Unpurgeable[];
  /** True when nothing is unpurgeable: every entry the rules can derive is gone (or would be). */
  complete: boolean;
}

const SAMPLE = 5;
/** Tag sets handed to the purger per call: bounded memory whatever the number of tags. */
const TAG_PAGE = 500;

function only(kind: WholesaleKind, entry: string): PurgeTargets {
  const targets = emptyTargets();
  if (kind === 'redis.tagPatterns') targets.redis.tags.push(entry);
  else {
    const [section, list] = kind.split('.') as ['redis' | 'cdn', string];
    (targets[section] as unknown as Record<string, string[]>)[list]?.push(entry);
  }
  return targets;
}

/** Targets that cannot take an entry: no Redis/CDN configured, or a CDN driver without that kind. */
function unsupported(placed: Placed, purgers: readonly Purger[]): Unpurgeable[] {
  const base = { rule: placed.rule, path: placed.path, template: placed.template, kind: placed.kind };
  if (placed.as.startsWith('redis.')) {
    if (purgers.some((purger) => purger.stage === 'redis')) return [];
    return [{ ...base, target: 'redis', reason: 'no redis section is configured' }];
  }
  const cdn = purgers.filter((purger) => purger.stage === 'cdn');
  if (cdn.length === 0) return [{ ...base, target: 'cdn', reason: 'no cdn driver is configured' }];
  const kind = placed.as.slice(4);
  const what =
    placed.kind === 'cdn.urls' && placed.as === 'cdn.prefixes'
      ? 'prefixes (needed for a templated URL)'
      : kind;
  return cdn
    .filter((purger) => purger.count(only(placed.as, placed.entry)) === 0)
    .map((purger) => ({ ...base, target: purger.name, reason: `${purger.name} cannot purge cdn ${what}` }));
}

async function purgeOrExplain(purger: Purger, targets: PurgeTargets, signal: AbortSignal): Promise<void> {
  try {
    await purger.purge(targets, { signal });
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
    redis: { keys: [], patterns: [], tags: [], tagPatterns: [] },
    cdn: cdnPurgers.length > 0 ? space.cdn : { urls: [], tags: [], prefixes: [] },
    unpurgeable,
    complete: unpurgeable.length === 0,
  };
  let client: Redis | Cluster | undefined;
  try {
    if (redisPurger && config.redis) {
      client = connectRedis(config.redis, logger);
      // ioredis rejects with "max retries" while its 'error' events carry the socket's reason.
      let socketError: unknown;
      const onError = (error: unknown): void => void (socketError ??= error);
      client.on('error', onError);
      try {
        await client.ping();
      } catch (error) {
        throw redisUnavailable(socketError ?? error, 'the cache Redis', describeRedis(config.redis.url));
      } finally {
        client.off('error', onError);
      }
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
    const setPrefix = keyPrefix + TAG_SET_SEGMENT;
    for (const pattern of space.redis.tagPatterns) {
      const entry: TagPatternSummary = { pattern, tagSets: 0, sample: [] };
      summary.redis.tagPatterns.push(entry);
      progress(`${dryRun ? 'counting' : 'purging'} tag sets matching ${pattern}`);
      let page: string[] = [];
      const flush = async (): Promise<void> => {
        if (page.length === 0 || dryRun) return;
        const targets = emptyTargets();
        targets.redis.tags = page;
        page = [];
        await purgeOrExplain(purger, targets, signal);
      };
      for await (const keys of scanKeys(redis, escapeGlob(setPrefix) + pattern, scanCount, signal)) {
        const tags = keys.map((key) => key.slice(setPrefix.length));
        entry.tagSets += tags.length;
        if (entry.sample.length < SAMPLE) entry.sample.push(...tags.slice(0, SAMPLE - entry.sample.length));
        page.push(...tags);
        if (page.length >= TAG_PAGE) await flush();
      }
      await flush();
    }
  }
}
