import { z } from 'zod';
import { cloudflarePlans, cloudFrontLimits, FASTLY_MAX_KEYS_PER_CALL } from '../cdn-plans.js';
import { milliseconds, positiveInt } from './common.js';

/**
 * CDN purge drivers. Every configured driver receives the purges it can express (URLs, tags,
 * prefixes). Credentials are best given as ${ENV_VAR} references; each driver also reads its
 * conventional environment variable when the option is omitted. They are never logged.
 */
const concurrency = positiveInt.default(4).describe('Purge requests in flight at once.');

/**
 * A token bucket: `perSecond` or `perMinute` refill, `burst` capacity. Every field left out keeps
 * its default (the plan's figure, or no limit where the provider documents none).
 */
export const RateLimitOverride = z
  .strictObject({
    perSecond: z.number().positive().optional().describe('Sustained rate per second.'),
    perMinute: z.number().positive().optional().describe('Sustained rate per minute (instead of perSecond).'),
    burst: positiveInt.optional().describe('Bucket capacity: how many may go at once after a quiet period.'),
  })
  .refine((limit) => limit.perSecond === undefined || limit.perMinute === undefined, {
    message: 'give perSecond or perMinute, not both',
  });
export type RateLimitOverride = z.infer<typeof RateLimitOverride>;

/** A limit of a provider without documented defaults: the rate must be given. */
const RateLimit = RateLimitOverride.refine(
  (limit) => limit.perSecond !== undefined || limit.perMinute !== undefined,
  { message: 'give perSecond or perMinute (this provider has no default rate)' },
);

/**
 * A provider that rejects the credentials or the zone/service id rejects every purge: the driver
 * pauses (walpurge_cdn_provider_paused = 1) and probes with one request this often until one succeeds.
 */
const circuitProbeIntervalMs = milliseconds
  .min(100)
  .default(30_000)
  .describe(
    'While the provider refuses the credentials or the zone/service id (401, 403, a 400 blaming them), purges wait and one request probes this often; the first success resumes.',
  );

export const CloudflareConfig = z.strictObject({
  zoneId: z.string().min(1).describe('Cloudflare zone id whose cache is purged.'),
  apiToken: z
    .string()
    .min(1)
    .optional()
    .describe('API token with Cache Purge permission; default: $CLOUDFLARE_API_TOKEN.'),
  baseUrl: z
    .url()
    .default('https://api.cloudflare.com/client/v4')
    .describe('API base URL (override for tests or proxies).'),
  plan: z
    .enum(cloudflarePlans)
    .default('free')
    .describe(
      'Cloudflare plan whose documented purge limits are the defaults of rateLimits and maxItemsPerCall (free: tag/prefix purges 5 per minute).',
    ),
  maxItemsPerCall: positiveInt
    .optional()
    .describe(
      "URLs, tags or prefixes per purge_cache call; default: the plan's figure (100; 500 URLs on enterprise).",
    ),
  rateLimits: z
    .strictObject({
      tagPrefixRequests: RateLimitOverride.optional().describe(
        "Purge calls by tag or prefix (counted in calls); default: the plan's figure.",
      ),
      urls: RateLimitOverride.optional().describe(
        "URLs purged by URL (counted in URLs); default: the plan's figure.",
      ),
    })
    .default({})
    .describe(
      "Overrides of the plan's purge rate limits (both buckets are shared by every walpurge process of the account: divide them).",
    ),
  concurrency,
  circuitProbeIntervalMs,
});
export type CloudflareConfig = z.infer<typeof CloudflareConfig>;

export const FastlyConfig = z.strictObject({
  serviceId: z.string().min(1).describe('Fastly service id whose surrogate keys are purged.'),
  apiToken: z
    .string()
    .min(1)
    .optional()
    .describe('API token with purge_select scope; default: $FASTLY_API_TOKEN.'),
  baseUrl: z
    .url()
    .default('https://api.fastly.com')
    .describe('API base URL (override for tests or proxies).'),
  softPurge: z
    .boolean()
    .default(false)
    .describe('Mark content stale instead of evicting it (Fastly-Soft-Purge: 1).'),
  maxKeysPerCall: positiveInt
    .max(FASTLY_MAX_KEYS_PER_CALL)
    .default(FASTLY_MAX_KEYS_PER_CALL)
    .describe('Surrogate keys per batch purge call (Fastly allows 256).'),
  rateLimit: RateLimit.optional().describe(
    'Purge API calls (counted in calls); default: no limit of its own (Fastly answers 429 with Retry-After when exceeded).',
  ),
  concurrency,
  circuitProbeIntervalMs,
});
export type FastlyConfig = z.infer<typeof FastlyConfig>;

export const CloudFrontConfig = z.strictObject({
  distributionId: z.string().min(1).describe('CloudFront distribution id.'),
  region: z.string().default('us-east-1').describe('AWS region of the API client (CloudFront is global).'),
  endpoint: z.url().optional().describe('API endpoint override (tests, proxies); default: the AWS endpoint.'),
  accessKeyId: z
    .string()
    .min(1)
    .optional()
    .describe('Access key id; default: the AWS SDK credential chain (env, profile, role).'),
  secretAccessKey: z.string().min(1).optional().describe('Secret access key, with accessKeyId.'),
  maxPathsPerInvalidation: positiveInt
    .max(cloudFrontLimits.maxPathsPerInvalidation)
    .default(cloudFrontLimits.maxPathsPerInvalidation)
    .describe('Paths per CreateInvalidation call (CloudFront allows 3000).'),
  maxPathsInFlight: positiveInt
    .default(cloudFrontLimits.maxPathsInFlight)
    .describe(
      'Paths of invalidations in progress at once (CloudFront allows 3000 per distribution), counted by each walpurge process; further purges wait until earlier invalidations complete.',
    ),
  maxWildcardPathsInFlight: positiveInt
    .default(cloudFrontLimits.maxWildcardPathsInFlight)
    .describe(
      'Wildcard (prefix) paths of invalidations in progress at once (CloudFront allows 15); also the most wildcard paths one invalidation carries.',
    ),
  completionPollMs: milliseconds
    .min(100)
    .default(30_000)
    .describe(
      'How often an invalidation in progress is checked (GetInvalidation) to free its in-flight paths.',
    ),
  maxCompletionWaitMs: milliseconds
    .min(100)
    .default(1_800_000)
    .describe(
      'After this long an invalidation that was never seen completed stops counting as in flight (CloudFront answers TooManyInvalidationsInProgress, retried, if it still is).',
    ),
  rateLimit: RateLimit.optional().describe('CreateInvalidation calls; default: no limit of its own.'),
  circuitProbeIntervalMs,
});
export type CloudFrontConfig = z.infer<typeof CloudFrontConfig>;

export const HttpPurgeConfig = z.strictObject({
  method: z
    .string()
    .regex(/^[A-Z]+$/, 'must be an upper-case HTTP method')
    .default('PURGE')
    .describe('Method sent per purged URL (PURGE, BAN, …).'),
  endpoint: z
    .url()
    .optional()
    .describe(
      "Send requests here (e.g. the Varnish/nginx address) with the URL's path; the original host goes in the X-Purge-Host header. Default: the URL itself.",
    ),
  tagMethod: z
    .string()
    .regex(/^[A-Z]+$/)
    .optional()
    .describe('Method for tag purges (e.g. PURGE for Varnish xkey); tags are not purged when unset.'),
  tagHeader: z.string().default('xkey').describe('Header carrying the space-separated tags of a tag purge.'),
  headers: z
    .record(z.string(), z.string())
    .default({})
    .describe('Extra headers on every purge request (e.g. an auth token via ${ENV}).'),
  rateLimit: RateLimit.optional().describe('Purge requests (counted in requests); default: no limit.'),
  concurrency,
  circuitProbeIntervalMs,
});
export type HttpPurgeConfig = z.infer<typeof HttpPurgeConfig>;

export const CdnConfig = z.strictObject({
  cloudflare: CloudflareConfig.optional().describe('Cloudflare: purge by URL, cache-tag and prefix.'),
  fastly: FastlyConfig.optional().describe('Fastly: purge by surrogate key and URL.'),
  cloudfront: CloudFrontConfig.optional().describe(
    'AWS CloudFront: invalidations of URL paths and prefixes.',
  ),
  http: HttpPurgeConfig.optional().describe('Generic HTTP purge (Varnish, nginx): one request per URL.'),
  requestTimeoutMs: positiveInt
    .default(10_000)
    .describe('Timeout of one CDN API request; a timeout is retried.'),
  // Seconds-scale on purpose: a hot row updated 50 times a second costs one API call per window.
  coalesceWindowMs: milliseconds
    .default(2_000)
    .describe(
      "How long each provider's CDN lane gathers queued entries before one coalesced purge call. CDN purges trail the Redis purges by up to this much (plus the provider's own throttling).",
    ),
  maxEntriesPerBatch: positiveInt
    .default(500)
    .describe('Queued events one CDN lane takes into one coalesced purge (per provider).'),
  maxUnclassifiedAttempts: positiveInt
    .default(5)
    .describe(
      'Attempts of a CDN purge failing with an error walpurge cannot classify (neither retriable nor permanent) before it is treated as permanent: the poison event is isolated and dead-lettered.',
    ),
});
export type CdnConfig = z.infer<typeof CdnConfig>;
