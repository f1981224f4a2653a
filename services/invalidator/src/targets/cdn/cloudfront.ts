import { randomUUID } from 'node:crypto';
import { CloudFrontClient, CreateInvalidationCommand } from '@aws-sdk/client-cloudfront';
import { backoffDelay, ErrorCode, sleep, WalpurgeError } from '@walpurge/core';
import type { CloudFrontConfig } from '@walpurge/config';
import type { PurgeTargets } from '@walpurge/rules';
import type { PurgeContext, Purger } from '../purger.js';
import { chunk } from '../redis/slot-groups.js';
import type { CdnDriverOptions } from './cdn-options.js';

/**
 * CloudFront paths: `/users/42?x=1` for a URL, `/users/*` for a prefix. CloudFront reads a `*`
 * in an invalidation path as a wildcard, so the only unencoded `*` is the one a prefix gets;
 * any other (a template's literal text; row values arrive encoded already) is sent as `%2A`.
 */
export function cloudFrontPaths(targets: PurgeTargets): string[] {
  const paths = new Set<string>();
  const pathOf = (url: string): string => {
    const parsed = new URL(url, 'https://placeholder.invalid');
    return `${parsed.pathname}${parsed.search}`.replaceAll('*', '%2A');
  };
  for (const url of targets.cdn.urls) paths.add(pathOf(url));
  for (const prefix of targets.cdn.prefixes) paths.add(`${pathOf(prefix)}*`);
  return [...paths];
}

const REQUEST_FAULTS = new Set(['InvalidArgument', 'MissingBody', 'InconsistentQuantities', 'BatchTooLarge']);

interface AwsError {
  name?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

/**
 * AWS CloudFront `CreateInvalidation`, at most `maxPathsPerInvalidation` paths per call. Each batch
 * keeps one CallerReference across its retries, so a retry after a lost response is recognised by
 * CloudFront as the same invalidation rather than a new one. Tags are not supported by CloudFront.
 */
export class CloudFrontPurger implements Purger {
  readonly name = 'cloudfront';
  readonly stage = 'cdn' as const;
  private readonly client: CloudFrontClient;

  constructor(
    private readonly config: CloudFrontConfig,
    private readonly options: CdnDriverOptions,
  ) {
    this.client = new CloudFrontClient({
      region: config.region,
      maxAttempts: 1, // our loop retries, with Retry-After-style backoff and metrics
      requestHandler: { requestTimeout: options.requestTimeoutMs },
      ...(config.endpoint ? { endpoint: config.endpoint } : {}),
      ...(config.accessKeyId && config.secretAccessKey
        ? { credentials: { accessKeyId: config.accessKeyId, secretAccessKey: config.secretAccessKey } }
        : {}),
    });
  }

  count(targets: PurgeTargets): number {
    return targets.cdn.urls.length + targets.cdn.prefixes.length;
  }

  async purge(targets: PurgeTargets, context: PurgeContext): Promise<void> {
    for (const paths of chunk(cloudFrontPaths(targets), this.config.maxPathsPerInvalidation)) {
      await this.invalidate(paths, context);
    }
  }

  private async invalidate(paths: string[], context: PurgeContext): Promise<void> {
    const command = new CreateInvalidationCommand({
      DistributionId: this.config.distributionId,
      InvalidationBatch: {
        CallerReference: `walpurge-${randomUUID()}`,
        Paths: { Quantity: paths.length, Items: paths },
      },
    });
    for (let attempt = 0; ; attempt += 1) {
      try {
        await this.client.send(command, { abortSignal: context.signal });
        return;
      } catch (error) {
        if (context.signal.aborted) throw new WalpurgeError(ErrorCode.Aborted, 'aborted', { cause: error });
        const aws = error as AwsError;
        const retriable = !REQUEST_FAULTS.has(aws.name ?? '');
        const wrapped = new WalpurgeError(
          ErrorCode.PurgeFailed,
          `cloudfront CreateInvalidation failed (${aws.$metadata?.httpStatusCode ?? 'no status'} ${aws.name ?? ''}): ${aws.message ?? String(error)}`,
          { retriable, cause: error },
        );
        if (!retriable) throw wrapped;
        const delay = backoffDelay(attempt, this.options.backoff);
        context.onRetry?.(wrapped, delay);
        await sleep(delay, context.signal);
      }
    }
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}
