import type { FastlyConfig } from '@walpurge/config';
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
import { sendAll, type CallAccounting, type HttpPurgeRequest } from './http-request.js';
import type { ProviderCircuit } from './provider-circuit.js';
import { bucketFor, takeFromBucket } from './rate-limit.js';
import type { TokenBucket } from '@walpurge/core';

/**
 * A 400/404 on a service-level path (`/service/{id}/…`) means the service id is unknown or the
 * token cannot reach it: every key purge would fail the same way.
 */
function blamesAccount(status: number, body: string): boolean {
  return (status === 400 || status === 404) && /service|token|auth/i.test(body);
}

/** Whether a key cannot go, unchanged and alone, in the space-separated Surrogate-Key header. */
function headerUnsafe(key: string): boolean {
  return /[^\x21-\x7e]/.test(key);
}

/**
 * Fastly: surrogate keys in batches (`POST /service/{id}/purge` with a space-separated
 * `Surrogate-Key` header, at most 256 keys), URLs one by one (`POST /purge/{host/path}`);
 * optional soft purge (`Fastly-Soft-Purge: 1`). A key with anything but printable ASCII cannot
 * travel in the header: whitespace would split it into other keys (and purge them), a character
 * above U+00FF or a control character cannot be sent at all, and other Latin-1 would go as bytes
 * that differ from the UTF-8 key the backend set. Such a key is purged alone, percent-encoded
 * UTF-8, via `POST /service/{id}/purge/{key}`. No prefix purge exists.
 */
export class FastlyPurger implements Purger {
  readonly name = 'fastly';
  readonly stage = 'cdn' as const;
  private readonly token: string;
  private readonly metrics: CdnMetrics;
  private readonly circuit: ProviderCircuit;
  private readonly bucket: TokenBucket | undefined;

  constructor(
    private readonly config: FastlyConfig,
    private readonly options: CdnDriverOptions,
  ) {
    this.token = requireApiToken('fastly', config.apiToken, 'FASTLY_API_TOKEN', options);
    ({ metrics: this.metrics, circuit: this.circuit } = providerRuntime(
      this.name,
      config.circuitProbeIntervalMs,
      options,
    ));
    this.bucket = bucketFor(undefined, config.rateLimit, options.clock);
  }

  count(targets: PurgeTargets): number {
    return targets.cdn.tags.length + targets.cdn.urls.length;
  }

  private call(kind: 'urls' | 'tags', items: number): CallAccounting {
    return {
      provider: this.name,
      kind,
      items,
      metrics: this.metrics,
      circuit: this.circuit,
      blamesAccount: kind === 'tags' ? blamesAccount : undefined,
      throttle: (signal) => takeFromBucket(this.bucket, 1, signal, this.name, this.metrics),
    };
  }

  async purge(targets: PurgeTargets, context: PurgeContext): Promise<void> {
    for (const url of targets.cdn.urls) parseTargetUrl(this.name, url);
    const base = this.config.baseUrl.replace(/\/$/, '');
    const service = `${base}/service/${encodeURIComponent(this.config.serviceId)}`;
    const headers: Record<string, string> = { 'fastly-key': this.token, accept: 'application/json' };
    if (this.config.softPurge) headers['fastly-soft-purge'] = '1';
    const plain = targets.cdn.tags.filter((key) => !headerUnsafe(key));
    const alone = targets.cdn.tags.filter(headerUnsafe);
    const requests: Array<{ request: HttpPurgeRequest; call: CallAccounting }> = [
      ...chunk(plain, this.config.maxKeysPerCall).map((keys) => ({
        request: {
          method: 'POST',
          url: `${service}/purge`,
          headers: { ...headers, 'surrogate-key': keys.join(' ') },
        },
        call: this.call('tags', keys.length),
      })),
      ...alone.map((key) => ({
        request: { method: 'POST', url: `${service}/purge/${encodeURIComponent(key)}`, headers },
        call: this.call('tags', 1),
      })),
      ...targets.cdn.urls.map((url) => ({
        request: { method: 'POST', url: `${base}/purge/${stripScheme(url)}`, headers },
        call: this.call('urls', 1),
      })),
    ];
    await sendAll(requests, this.config.concurrency, sendOptions(context, this.options));
  }

  async close(): Promise<void> {}
}
