import type { HttpPurgeConfig } from '@walpurge/config';
import type { PurgeTargets } from '@walpurge/rules';
import type { PurgeContext, Purger } from '../purger.js';
import { chunk } from '../redis/slot-groups.js';
import { sendOptions, type CdnDriverOptions } from './cdn-options.js';
import { sendAll, type HttpPurgeRequest } from './http-request.js';

/**
 * Varnish / nginx / any cache with an HTTP purge method: one `PURGE` (or configured method) per URL,
 * sent to the URL itself or to `endpoint` with the original host in `X-Purge-Host`. Tag purges
 * (Varnish xkey) when `tagMethod` and `endpoint` are set. 404 counts as success: nothing cached.
 */
export class HttpPurger implements Purger {
  readonly name = 'http';
  readonly stage = 'cdn' as const;

  constructor(
    private readonly config: HttpPurgeConfig,
    private readonly options: CdnDriverOptions,
  ) {}

  private get tagsSupported(): boolean {
    return this.config.tagMethod !== undefined && this.config.endpoint !== undefined;
  }

  count(targets: PurgeTargets): number {
    return targets.cdn.urls.length + (this.tagsSupported ? targets.cdn.tags.length : 0);
  }

  private urlRequest(url: string): HttpPurgeRequest {
    if (!this.config.endpoint) return { method: this.config.method, url, headers: this.config.headers };
    const parsed = new URL(url);
    const endpoint = this.config.endpoint.replace(/\/$/, '');
    return {
      method: this.config.method,
      url: `${endpoint}${parsed.pathname}${parsed.search}`,
      headers: { ...this.config.headers, 'x-purge-host': parsed.host },
    };
  }

  async purge(targets: PurgeTargets, context: PurgeContext): Promise<void> {
    const requests = targets.cdn.urls.map((url) => this.urlRequest(url));
    if (this.tagsSupported && this.config.endpoint && this.config.tagMethod) {
      // xkey splits its header on whitespace, so a tag containing whitespace can never have been
      // attached to a cached object: there is nothing to purge for it, and sending it would purge
      // the unrelated tags it splits into.
      const plain = targets.cdn.tags.filter((tag) => !/\s/.test(tag));
      for (const tags of chunk(plain, 50)) {
        requests.push({
          method: this.config.tagMethod,
          url: this.config.endpoint,
          headers: { ...this.config.headers, [this.config.tagHeader]: tags.join(' ') },
        });
      }
    }
    await sendAll(requests, this.config.concurrency, sendOptions(context, this.options, [404]));
  }

  async close(): Promise<void> {}
}
