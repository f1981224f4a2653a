import { connectRedis, type WalpurgeConfig } from '@walpurge/config';
import type { BackoffOptions, Logger } from '@walpurge/core';
import type { CompiledRules } from '@walpurge/rules';
import { createCdnMetrics, type CdnMetrics } from './cdn/cdn-metrics.js';
import { CloudflarePurger } from './cdn/cloudflare.js';
import { CloudFrontPurger } from './cdn/cloudfront.js';
import { FastlyPurger } from './cdn/fastly.js';
import { HttpPurger } from './cdn/generic-http.js';
import type { Purger } from './purger.js';
import type { SweepObserver } from './redis/pattern-sweeper.js';
import { RedisPurger } from './redis/redis-purger.js';

/** What each CDN driver can express; rules asking for more are reported at start-up. */
const cdnSupport: Record<string, ReadonlyArray<'urls' | 'tags' | 'prefixes'>> = {
  cloudflare: ['urls', 'tags', 'prefixes'],
  fastly: ['urls', 'tags'],
  cloudfront: ['urls', 'prefixes'],
  http: ['urls', 'tags'],
};

export function createPurgers(
  config: WalpurgeConfig,
  rules: CompiledRules,
  logger: Logger,
  backoff: BackoffOptions,
  observers: {
    /** Where the CDN drivers report (walpurge_cdn_*); default: a registry of their own. */
    cdnMetrics?: CdnMetrics;
    /** Receives the Redis target's pattern sweep figures. */
    sweepObserver?: SweepObserver;
  } = {},
): Purger[] {
  const { cdnMetrics = createCdnMetrics(), sweepObserver } = observers;
  const purgers: Purger[] = [];
  const usesRedis = rules.rules.some((rule) =>
    rule.templates.concat(rule.fallback).some((t) => t.kind.startsWith('redis.')),
  );
  if (config.redis) {
    purgers.push(
      new RedisPurger(connectRedis(config.redis, logger), {
        keyPrefix: config.redis.keyPrefix,
        connection: config.redis,
        batchSize: config.invalidator.redisBatchSize,
        scanCount: config.invalidator.redisScanCount,
        sweep: {
          minWindowMs: config.invalidator.redisSweepMinWindowMs,
          windowFactor: config.invalidator.redisSweepWindowFactor,
          maxWindowMs: config.invalidator.redisSweepMaxWindowMs,
        },
        ...(sweepObserver ? { sweepObserver } : {}),
      }),
    );
  } else if (usesRedis) {
    logger.warn('rules declare Redis entries but no redis section is configured: they are not purged');
  }
  const cdn = config.cdn;
  if (cdn) {
    const options = {
      requestTimeoutMs: cdn.requestTimeoutMs,
      backoff,
      metrics: cdnMetrics,
      logger: logger.child({ component: 'cdn' }),
    };
    if (cdn.cloudflare) purgers.push(new CloudflarePurger(cdn.cloudflare, options));
    if (cdn.fastly) purgers.push(new FastlyPurger(cdn.fastly, options));
    if (cdn.cloudfront) purgers.push(new CloudFrontPurger(cdn.cloudfront, options));
    if (cdn.http) purgers.push(new HttpPurger(cdn.http, options));
  }
  const cdnPurgers = purgers.filter((p) => p.stage === 'cdn');
  for (const rule of rules.rules) {
    for (const template of rule.templates.concat(rule.fallback)) {
      if (!template.kind.startsWith('cdn.')) continue;
      const kind = template.kind.slice(4) as 'urls' | 'tags' | 'prefixes';
      if (cdnPurgers.length === 0)
        logger.warn(
          { rule: rule.name, path: template.path },
          'rule declares CDN entries but no cdn driver is configured',
        );
      for (const purger of cdnPurgers) {
        if (!cdnSupport[purger.name]?.includes(kind)) {
          logger.warn(
            { rule: rule.name, path: template.path, driver: purger.name },
            `${purger.name} cannot purge cdn.${kind}; this entry is skipped for it`,
          );
        }
      }
    }
  }
  return purgers;
}
