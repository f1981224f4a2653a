import type { FastlyConfig } from '@walpurge/config';
import type { PurgeTargets } from '@walpurge/rules';
import type { PurgeContext, Purger } from '../purger.js';
import { chunk } from '../redis/slot-groups.js';
import { requireApiToken, sendOptions, stripScheme, type CdnDriverOptions } from './cdn-options.js';
import { sendAll, type HttpPurgeRequest } from './http-request.js';

/**
 * Fastly: surrogate keys in batches (`POST /service/{id}/purge` with a space-separated
 * `Surrogate-Key` header), URLs one by one (`POST /purge/{host/path}`); optional soft purge.
 * A key containing whitespace cannot travel in the header (it would split into other keys and
 * purge them): it is purged alone via `POST /service/{id}/purge/{key}`. No prefix purge exists.
 */
export class FastlyPurger implements Purger {
  readonly name = 'fastly';
  readonly stage = 'cdn' as const;
  private readonly token: string;

  constructor(
    private readonly config: FastlyConfig,
    private readonly options: CdnDriverOptions,
  ) {
    this.token = requireApiToken('fastly', config.apiToken, 'FASTLY_API_TOKEN', options);
  }

  count(targets: PurgeTargets): number {
    return targets.cdn.tags.length + targets.cdn.urls.length;
  }

  async purge(targets: PurgeTargets, context: PurgeContext): Promise<void> {
    const base = this.config.baseUrl.replace(/\/$/, '');
    const service = `${base}/service/${encodeURIComponent(this.config.serviceId)}`;
    const headers: Record<string, string> = { 'fastly-key': this.token, accept: 'application/json' };
    if (this.config.softPurge) headers['fastly-soft-purge'] = '1';
    const plain = targets.cdn.tags.filter((key) => !/\s/.test(key));
    const spaced = targets.cdn.tags.filter((key) => /\s/.test(key));
    const requests: HttpPurgeRequest[] = [
      ...chunk(plain, this.config.maxKeysPerCall).map((keys) => ({
        method: 'POST',
        url: `${service}/purge`,
        headers: { ...headers, 'surrogate-key': keys.join(' ') },
      })),
      ...spaced.map((key) => ({
        method: 'POST',
        url: `${service}/purge/${encodeURIComponent(key)}`,
        headers,
      })),
      ...targets.cdn.urls.map((url) => ({
        method: 'POST',
        url: `${base}/purge/${stripScheme(url)}`,
        headers,
      })),
    ];
    await sendAll(requests, this.config.concurrency, sendOptions(context, this.options));
  }

  async close(): Promise<void> {}
}
