import { describe, expect, it } from 'vitest';
import { CdnConfig } from './schema/cdn.js';

const cloudflare = { zoneId: 'z', apiToken: 't' };

describe('cdn config: limits', () => {
  it('defaults Cloudflare to the free plan with no explicit per-call maximum (the plan decides)', () => {
    const parsed = CdnConfig.parse({ cloudflare });
    expect(parsed.cloudflare?.plan).toBe('free');
    expect(parsed.cloudflare?.maxItemsPerCall).toBeUndefined();
    expect(parsed.cloudflare?.rateLimits).toEqual({});
    expect(parsed.cloudflare?.circuitProbeIntervalMs).toBe(30_000);
  });

  it('accepts a burst-only override of a plan limit, but not both perSecond and perMinute', () => {
    expect(
      CdnConfig.safeParse({ cloudflare: { ...cloudflare, rateLimits: { urls: { burst: 10 } } } }).success,
    ).toBe(true);
    expect(
      CdnConfig.safeParse({
        cloudflare: { ...cloudflare, rateLimits: { tagPrefixRequests: { perSecond: 1, perMinute: 60 } } },
      }).success,
    ).toBe(false);
  });

  it('a provider without default rates needs the rate itself; documented maxima are enforced', () => {
    const fastly = { serviceId: 's', apiToken: 't' };
    expect(CdnConfig.safeParse({ fastly: { ...fastly, rateLimit: { burst: 5 } } }).success).toBe(false);
    expect(CdnConfig.safeParse({ fastly: { ...fastly, rateLimit: { perMinute: 600 } } }).success).toBe(true);
    expect(CdnConfig.safeParse({ fastly: { ...fastly, maxKeysPerCall: 257 } }).success).toBe(false);
    expect(
      CdnConfig.safeParse({ cloudfront: { distributionId: 'D', maxPathsPerInvalidation: 3001 } }).success,
    ).toBe(false);
  });
});
