import { z } from 'zod';
import { cloudflarePlanLimits, type CloudflareConfig } from '@walpurge/config';
import type { PurgeTargets } from '@walpurge/rules';
import type { PurgeContext, Purger } from '../purger.js';
import { chunk } from '../redis/slot-groups.js';
import type { CdnMetrics } from './cdn-metrics.js';
import {
  parseTargetUrl,
  providerRuntime,
  requireApiToken,
  sendOptions,
  stripScheme,
  type CdnDriverOptions,
} from './cdn-options.js';
import { mapLimit, PurgeHttpError, sendWithRetry, type CallAccounting } from './http-request.js';
import type { ProviderCircuit } from './provider-circuit.js';
import { bucketFor, takeFromBucket } from './rate-limit.js';
import type { TokenBucket } from '@walpurge/core';

const PurgeResponse = z.object({
  success: z.boolean(),
  errors: z.array(z.object({ code: z.number().optional(), message: z.string().optional() })).default([]),
});

/**
 * Cloudflare error codes that blame the zone id or the token rather than one purged item:
 * 7000/7003 no route / invalid object identifier (the zone id), 6003/6111 malformed
 * authorization, 9109 token lacks permission on the zone, 10000 authentication error.
 */
const ACCOUNT_ERROR_CODES = new Set([7000, 7003, 6003, 6111, 9109, 10000]);

function blamesAccount(_status: number, body: string): boolean {
  const parsed = PurgeResponse.safeParse(safeJson(body));
  return (
    parsed.success && parsed.data.errors.some((e) => e.code !== undefined && ACCOUNT_ERROR_CODES.has(e.code))
  );
}

type Kind = 'urls' | 'tags' | 'prefixes';

/**
 * Cloudflare `POST /zones/{zone}/purge_cache`: `files` (URLs), `tags` (Cache-Tag) or `prefixes`
 * (host/path without scheme), one kind per call, at most the plan's items per call. Purges by
 * tag or prefix are paced by the plan's call bucket, purges by URL by its URL bucket (Cloudflare
 * counts them separately); a 429 waits what Retry-After says.
 */
export class CloudflarePurger implements Purger {
  readonly name = 'cloudflare';
  readonly stage = 'cdn' as const;
  private readonly token: string;
  private readonly metrics: CdnMetrics;
  private readonly circuit: ProviderCircuit;
  private readonly tagPrefixBucket: TokenBucket | undefined;
  private readonly urlBucket: TokenBucket | undefined;
  private readonly urlsPerCall: number;
  private readonly tagPrefixItemsPerCall: number;

  constructor(
    private readonly config: CloudflareConfig,
    private readonly options: CdnDriverOptions,
  ) {
    this.token = requireApiToken('cloudflare', config.apiToken, 'CLOUDFLARE_API_TOKEN', options);
    ({ metrics: this.metrics, circuit: this.circuit } = providerRuntime(
      this.name,
      config.circuitProbeIntervalMs,
      options,
    ));
    const plan = cloudflarePlanLimits[config.plan];
    this.tagPrefixBucket = bucketFor(
      plan.tagPrefixRequests,
      config.rateLimits.tagPrefixRequests,
      options.clock,
    );
    this.urlBucket = bucketFor(plan.urls, config.rateLimits.urls, options.clock);
    this.urlsPerCall = config.maxItemsPerCall ?? plan.urlItemsPerCall;
    this.tagPrefixItemsPerCall = config.maxItemsPerCall ?? plan.tagPrefixItemsPerCall;
  }

  count(targets: PurgeTargets): number {
    return targets.cdn.urls.length + targets.cdn.tags.length + targets.cdn.prefixes.length;
  }

  private call(kind: Kind, items: number): CallAccounting {
    const urls = kind === 'urls';
    return {
      provider: this.name,
      kind,
      items,
      metrics: this.metrics,
      circuit: this.circuit,
      blamesAccount,
      throttle: (signal) =>
        takeFromBucket(
          urls ? this.urlBucket : this.tagPrefixBucket,
          urls ? items : 1,
          signal,
          this.name,
          this.metrics,
        ),
    };
  }

  async purge(targets: PurgeTargets, context: PurgeContext): Promise<void> {
    for (const url of [...targets.cdn.urls, ...targets.cdn.prefixes]) parseTargetUrl(this.name, url);
    const bodies: Array<{ kind: Kind; body: Record<string, string[]> }> = [
      ...chunk(targets.cdn.urls, this.urlsPerCall).map((files) => ({
        kind: 'urls' as const,
        body: { files },
      })),
      ...chunk(targets.cdn.tags, this.tagPrefixItemsPerCall).map((tags) => ({
        kind: 'tags' as const,
        body: { tags },
      })),
      ...chunk(targets.cdn.prefixes.map(stripScheme), this.tagPrefixItemsPerCall).map((prefixes) => ({
        kind: 'prefixes' as const,
        body: { prefixes },
      })),
    ];
    await mapLimit(bodies, this.config.concurrency, context.signal, async ({ kind, body }, signal) => {
      const call = this.call(kind, Object.values(body)[0]?.length ?? 0);
      const response = await sendWithRetry(
        {
          method: 'POST',
          url: `${this.config.baseUrl.replace(/\/$/, '')}/zones/${encodeURIComponent(this.config.zoneId)}/purge_cache`,
          headers: { authorization: `Bearer ${this.token}`, 'content-type': 'application/json' },
          body: JSON.stringify(body),
        },
        sendOptions({ ...context, signal }, this.options, undefined, call),
      );
      const parsed = PurgeResponse.safeParse(safeJson(response.body));
      if (!parsed.success || !parsed.data.success) {
        const errors = parsed.success
          ? parsed.data.errors.map((e) => `${e.code ?? ''} ${e.message ?? ''}`.trim()).join('; ')
          : 'unexpected response';
        throw new PurgeHttpError(
          `cloudflare purge_cache did not succeed: ${errors}`,
          response.status,
          undefined,
          { retriable: false },
        );
      }
    });
  }

  async close(): Promise<void> {}
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
