import {
  cloudflarePlanLimits,
  cloudFrontLimits,
  type CdnConfig,
  type RateLimitOverride,
} from '@walpurge/config';
import type { CdnKind } from '@walpurge/rules';

/** A limit the estimate compares with: so many calls (or items) per second. */
export interface Limit {
  perSecond: number;
  unit: 'calls' | 'items';
  /** Where the figure comes from, for the warning: "free plan", "rateLimit". */
  source: string;
}

/**
 * API calls of a provider that share one rate limit. Items of each kind are batched
 * `perCall[kind]` to a call; `sharedBatch` kinds travel together in the same calls (CloudFront
 * paths of URLs and prefixes).
 */
export interface Channel {
  label: string;
  perCall: Partial<Record<CdnKind, number>>;
  sharedBatch?: number;
  limit?: Limit;
}

export interface ProviderModel {
  provider: string;
  channels: Channel[];
}

function overrideLimit(
  override: RateLimitOverride | undefined,
  unit: Limit['unit'],
  source: string,
): Limit | undefined {
  const perSecond =
    override?.perSecond ?? (override?.perMinute === undefined ? undefined : override.perMinute / 60);
  return perSecond === undefined ? undefined : { perSecond, unit, source };
}

/** How each configured CDN driver batches and which limits apply (the same figures the drivers use). */
export function providerModels(cdn: CdnConfig | undefined): ProviderModel[] {
  const models: ProviderModel[] = [];
  if (cdn?.cloudflare) {
    const config = cdn.cloudflare;
    const plan = cloudflarePlanLimits[config.plan];
    const tagPrefixPerCall = config.maxItemsPerCall ?? plan.tagPrefixItemsPerCall;
    models.push({
      provider: 'cloudflare',
      channels: [
        {
          label: 'URL purges',
          perCall: { urls: config.maxItemsPerCall ?? plan.urlItemsPerCall },
          limit: overrideLimit(config.rateLimits.urls, 'items', 'rateLimits.urls') ?? {
            perSecond: plan.urls.perSecond,
            unit: 'items',
            source: `${config.plan} plan`,
          },
        },
        {
          label: 'tag/prefix purges',
          perCall: { tags: tagPrefixPerCall, prefixes: tagPrefixPerCall },
          limit: overrideLimit(
            config.rateLimits.tagPrefixRequests,
            'calls',
            'rateLimits.tagPrefixRequests',
          ) ?? {
            perSecond: plan.tagPrefixRequests.perSecond,
            unit: 'calls',
            source: `${config.plan} plan`,
          },
        },
      ],
    });
  }
  if (cdn?.fastly)
    models.push({
      provider: 'fastly',
      channels: [
        {
          label: 'purges',
          perCall: { tags: cdn.fastly.maxKeysPerCall, urls: 1 },
          limit: overrideLimit(cdn.fastly.rateLimit, 'calls', 'rateLimit'),
        },
      ],
    });
  if (cdn?.cloudfront)
    models.push({
      provider: 'cloudfront',
      channels: [
        {
          label: 'invalidations',
          perCall: { urls: 1, prefixes: 1 },
          sharedBatch: Math.min(
            cdn.cloudfront.maxPathsPerInvalidation,
            cloudFrontLimits.maxPathsPerInvalidation,
          ),
          limit: overrideLimit(cdn.cloudfront.rateLimit, 'calls', 'rateLimit'),
        },
      ],
    });
  if (cdn?.http) {
    const tags = cdn.http.tagMethod !== undefined && cdn.http.endpoint !== undefined;
    models.push({
      provider: 'http',
      channels: [
        {
          label: 'purge requests',
          perCall: tags ? { urls: 1, tags: 50 } : { urls: 1 },
          limit: overrideLimit(cdn.http.rateLimit, 'calls', 'rateLimit'),
        },
      ],
    });
  }
  return models;
}
