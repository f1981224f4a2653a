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
import type { TokenBucket } from './token-bucket.js';

/**
 * A 400/404 on a service-level path (`/service/{id}/…`) means the service id is unknown or the
 * token cannot reach it: every key purge would fail the same way.
 */
function blamesAccount(status: number, body: string): boolean {
  return (status === 400 || status === 404) && /service|token|auth/i.test(body);
}

/**
 * Fastly: surrogate keys in batches (`POST /service/{id}/purge` with a space-separated
 * `Surrogate-Key` header, at most 256 keys), URLs one by one (`POST /purge/{host/path}`);
 * optional soft purge (`Fastly-Soft-Purge: 1`). A key containing whitespace cannot travel in the
 * header (it would split into other keys and purge them): it is purged alone via
 * `POST /service/{id}/purge/{key}`. No prefix purge exists.
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
    const plain = targets.cdn.tags.filter((key) => !/\s/.test(key));
    const spaced = targets.cdn.tags.filter((key) => /\s/.test(key));
    const requests: Array<{ request: HttpPurgeRequest; call: CallAccounting }> = [
      ...chunk(plain, this.config.maxKeysPerCall).map((keys) => ({
        request: {
          method: 'POST',
          url: `${service}/purge`,
          headers: { ...headers, 'surrogate-key': keys.join(' ') },
        },
        call: this.call('tags', keys.length),
      })),
      ...spaced.map((key) => ({
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
