import { z } from 'zod';
import type { CloudflareConfig } from '@walpurge/config';
import type { PurgeTargets } from '@walpurge/rules';
import type { PurgeContext, Purger } from '../purger.js';
import { chunk } from '../redis/slot-groups.js';
import { requireApiToken, sendOptions, stripScheme, type CdnDriverOptions } from './cdn-options.js';
import { mapLimit, PurgeHttpError, sendWithRetry } from './http-request.js';

const PurgeResponse = z.object({
  success: z.boolean(),
  errors: z.array(z.object({ code: z.number().optional(), message: z.string().optional() })).default([]),
});

/**
 * Cloudflare `POST /zones/{zone}/purge_cache`: `files` (URLs), `tags` (Cache-Tag) or `prefixes`
 * (host/path without scheme), one kind per call and at most `maxItemsPerCall` items per call.
 */
export class CloudflarePurger implements Purger {
  readonly name = 'cloudflare';
  readonly stage = 'cdn' as const;
  private readonly token: string;

  constructor(
    private readonly config: CloudflareConfig,
    private readonly options: CdnDriverOptions,
  ) {
    this.token = requireApiToken('cloudflare', config.apiToken, 'CLOUDFLARE_API_TOKEN', options);
  }

  count(targets: PurgeTargets): number {
    return targets.cdn.urls.length + targets.cdn.tags.length + targets.cdn.prefixes.length;
  }

  async purge(targets: PurgeTargets, context: PurgeContext): Promise<void> {
    const max = this.config.maxItemsPerCall;
    const bodies = [
      ...chunk(targets.cdn.urls, max).map((files) => ({ files })),
      ...chunk(targets.cdn.tags, max).map((tags) => ({ tags })),
      ...chunk(targets.cdn.prefixes.map(stripScheme), max).map((prefixes) => ({ prefixes })),
    ];
    await mapLimit(bodies, this.config.concurrency, async (body) => {
      const response = await sendWithRetry(
        {
          method: 'POST',
          url: `${this.config.baseUrl.replace(/\/$/, '')}/zones/${encodeURIComponent(this.config.zoneId)}/purge_cache`,
          headers: { authorization: `Bearer ${this.token}`, 'content-type': 'application/json' },
          body: JSON.stringify(body),
        },
        sendOptions(context, this.options),
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
