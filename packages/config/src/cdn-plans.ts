/**
 * Documented purge limits of the CDN APIs, used as defaults that the config can override (see
 * docs/configuration.md, "CDN limits"). They change over time and per contract: they are starting
 * points, not guarantees. A rate is a token bucket: `perSecond` refill, `burst` capacity.
 */
export interface RateLimitFigures {
  perSecond: number;
  burst: number;
}

export const cloudflarePlans = ['free', 'pro', 'business', 'enterprise'] as const;
export type CloudflarePlan = (typeof cloudflarePlans)[number];

export interface CloudflarePlanLimits {
  /** Purge by tag, hostname or prefix: counted in API calls. */
  tagPrefixRequests: RateLimitFigures;
  /** Purge by URL (single file): counted in URLs. */
  urls: RateLimitFigures;
  /** Items per purge_cache call for tags, hosts and prefixes. */
  tagPrefixItemsPerCall: number;
  /** URLs per purge_cache call. */
  urlItemsPerCall: number;
}

/** Cloudflare "Purge cache" limits per plan, applied per account (figures of the Cloudflare docs, 2026). */
export const cloudflarePlanLimits: Record<CloudflarePlan, CloudflarePlanLimits> = {
  free: {
    tagPrefixRequests: { perSecond: 5 / 60, burst: 25 },
    urls: { perSecond: 800, burst: 800 },
    tagPrefixItemsPerCall: 100,
    urlItemsPerCall: 100,
  },
  pro: {
    tagPrefixRequests: { perSecond: 5, burst: 25 },
    urls: { perSecond: 1500, burst: 1500 },
    tagPrefixItemsPerCall: 100,
    urlItemsPerCall: 100,
  },
  business: {
    tagPrefixRequests: { perSecond: 10, burst: 50 },
    urls: { perSecond: 1500, burst: 1500 },
    tagPrefixItemsPerCall: 100,
    urlItemsPerCall: 100,
  },
  enterprise: {
    tagPrefixRequests: { perSecond: 50, burst: 500 },
    urls: { perSecond: 3000, burst: 3000 },
    tagPrefixItemsPerCall: 100,
    urlItemsPerCall: 500,
  },
};

/** Fastly: surrogate keys per bulk purge call. Fastly documents no purge rate for the defaults. */
export const FASTLY_MAX_KEYS_PER_CALL = 256;

/** CloudFront invalidations: per-distribution limits on what is in progress, and the free tier. */
export const cloudFrontLimits = {
  maxPathsPerInvalidation: 3000,
  maxPathsInFlight: 3000,
  maxWildcardPathsInFlight: 15,
  /** Paths per month included for free (per AWS account); each further path is billed. */
  freePathsPerMonth: 1000,
} as const;
