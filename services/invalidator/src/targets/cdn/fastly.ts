import { ErrorCode, WalpurgeError } from '@walpurge/core';
import type { FastlyConfig } from '@walpurge/config';
import type { PurgeTargets } from '@walpurge/rules';
import type { PurgeContext, Purger } from '../purger.js';
import { chunk } from '../redis/slot-groups.js';
import { stripScheme, type CdnDriverOptions } from './cdn-options.js';
import { mapLimit, sendWithRetry, type HttpPurgeRequest } from './http-request.js';

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
    const token = config.apiToken ?? (options.env ?? process.env)['FASTLY_API_TOKEN'];
    if (!token) {
      throw new WalpurgeError(ErrorCode.ConfigInvalid, 'cdn.fastly: no API token', {
        hint: 'set cdn.fastly.apiToken (e.g. ${FASTLY_API_TOKEN}) or the FASTLY_API_TOKEN environment variable',
      });
    }
    this.token = token;
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
    await mapLimit(requests, this.config.concurrency, async (request) => {
      await sendWithRetry(request, {
        signal: context.signal,
        timeoutMs: this.options.requestTimeoutMs,
        backoff: this.options.backoff,
        onRetry: context.onRetry,
      });
    });
  }

  async close(): Promise<void> {}
}
