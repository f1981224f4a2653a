import { z } from 'zod';
import { milliseconds, positiveInt } from './common.js';

/**
 * CDN purge drivers. Every configured driver receives the purges it can express (URLs, tags,
 * prefixes). Credentials are best given as ${ENV_VAR} references; each driver also reads its
 * conventional environment variable when the option is omitted. They are never logged.
 */
const concurrency = positiveInt.default(4).describe('Purge requests in flight at once.');

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
  maxItemsPerCall: positiveInt
    .default(30)
    .describe('URLs, tags or prefixes per purge_cache call (30 on most plans, more on Enterprise).'),
  concurrency,
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
    .default(256)
    .describe('Surrogate keys per batch purge call (Fastly allows 256).'),
  concurrency,
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
    .default(3000)
    .describe('Paths per CreateInvalidation call (CloudFront allows 3000).'),
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
  concurrency,
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
