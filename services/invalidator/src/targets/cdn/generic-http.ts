import type { HttpPurgeConfig } from '@walpurge/config';
import type { PurgeTargets } from '@walpurge/rules';
import type { PurgeContext, Purger } from '../purger.js';
import { chunk } from '../redis/slot-groups.js';
import type { CdnMetrics } from './cdn-metrics.js';
import { parseTargetUrl, providerRuntime, sendOptions, type CdnDriverOptions } from './cdn-options.js';
import { sendAll, type CallAccounting, type HttpPurgeRequest } from './http-request.js';
import type { ProviderCircuit } from './provider-circuit.js';
import { bucketFor, takeFromBucket } from './rate-limit.js';
import type { TokenBucket } from '@walpurge/core';

/**
 * A header value as the UTF-8 bytes of `text`: fetch sends each character of a header value as one
 * byte (Latin-1) and refuses any above U+00FF, while the backend attached the tag in UTF-8. ASCII
 * is unchanged; a control character (NUL, …) stays invalid and is refused before sending.
 */
function headerBytes(text: string): string {
  return Buffer.from(text, 'utf8').toString('latin1');
}

/**
 * Varnish / nginx / any cache with an HTTP purge method: one `PURGE` (or configured method) per URL,
 * sent to the URL itself or to `endpoint` with the original host in `X-Purge-Host`. Tag purges
 * (Varnish xkey) when `tagMethod` and `endpoint` are set, tags sent as their UTF-8 bytes. 404 counts
 * as success: nothing cached.
 */
export class HttpPurger implements Purger {
  readonly name = 'http';
  readonly stage = 'cdn' as const;
  private readonly metrics: CdnMetrics;
  private readonly circuit: ProviderCircuit;
  private readonly bucket: TokenBucket | undefined;

  constructor(
    private readonly config: HttpPurgeConfig,
    private readonly options: CdnDriverOptions,
  ) {
    ({ metrics: this.metrics, circuit: this.circuit } = providerRuntime(
      this.name,
      config.circuitProbeIntervalMs,
      options,
    ));
    this.bucket = bucketFor(undefined, config.rateLimit, options.clock);
  }

  private get tagsSupported(): boolean {
    return this.config.tagMethod !== undefined && this.config.endpoint !== undefined;
  }

  count(targets: PurgeTargets): number {
    return targets.cdn.urls.length + (this.tagsSupported ? targets.cdn.tags.length : 0);
  }

  private call(kind: 'urls' | 'tags', items: number): CallAccounting {
    return {
      provider: this.name,
      kind,
      items,
      metrics: this.metrics,
      circuit: this.circuit,
      throttle: (signal) => takeFromBucket(this.bucket, 1, signal, this.name, this.metrics),
    };
  }

  private urlRequest(url: string): HttpPurgeRequest {
    const parsed = parseTargetUrl(this.name, url);
    if (!this.config.endpoint) return { method: this.config.method, url, headers: this.config.headers };
    const endpoint = this.config.endpoint.replace(/\/$/, '');
    return {
      method: this.config.method,
      url: `${endpoint}${parsed.pathname}${parsed.search}`,
      headers: { ...this.config.headers, 'x-purge-host': parsed.host },
    };
  }

  async purge(targets: PurgeTargets, context: PurgeContext): Promise<void> {
    const requests = targets.cdn.urls.map((url) => ({
      request: this.urlRequest(url),
      call: this.call('urls', 1),
    }));
    if (this.tagsSupported && this.config.endpoint && this.config.tagMethod) {
      // xkey splits its header on whitespace, so a tag containing whitespace can never have been
      // attached to a cached object: there is nothing to purge for it, and sending it would purge
      // the unrelated tags it splits into.
      const plain = targets.cdn.tags.filter((tag) => !/\s/.test(tag));
      for (const tags of chunk(plain, 50)) {
        requests.push({
          request: {
            method: this.config.tagMethod,
            url: this.config.endpoint,
            headers: { ...this.config.headers, [this.config.tagHeader]: headerBytes(tags.join(' ')) },
          },
          call: this.call('tags', tags.length),
        });
      }
    }
    await sendAll(requests, this.config.concurrency, sendOptions(context, this.options, [404]));
  }

  async close(): Promise<void> {}
}
