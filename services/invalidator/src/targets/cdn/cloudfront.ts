import { randomUUID } from 'node:crypto';
import {
  CloudFrontClient,
  CreateInvalidationCommand,
  GetInvalidationCommand,
} from '@aws-sdk/client-cloudfront';
import { backoffDelay, ErrorCode, sleep, WalpurgeError, type TokenBucket } from '@walpurge/core';
import type { CloudFrontConfig } from '@walpurge/config';
import type { PurgeTargets } from '@walpurge/rules';
import type { PurgeContext, Purger } from '../purger.js';
import type { CdnMetrics } from './cdn-metrics.js';
import { parseTargetUrl, providerRuntime, type CdnDriverOptions } from './cdn-options.js';
import { callProvider, PurgeHttpError, type CallAccounting } from './http-request.js';
import { InFlightBudget } from './in-flight-budget.js';
import type { ProviderCircuit } from './provider-circuit.js';
import { bucketFor, takeFromBucket } from './rate-limit.js';

/**
 * CloudFront paths: `/users/42?x=1` for a URL, `/users/*` for a prefix. CloudFront reads a `*`
 * in an invalidation path as a wildcard, so the only unencoded `*` is the one a prefix gets;
 * any other (a template's literal text; row values arrive encoded already) is sent as `%2A`.
 */
export function cloudFrontPaths(targets: PurgeTargets): string[] {
  const paths = new Set<string>();
  const pathOf = (url: string): string => {
    const parsed = parseTargetUrl('cloudfront', url);
    return `${parsed.pathname}${parsed.search}`.replaceAll('*', '%2A');
  };
  for (const url of targets.cdn.urls) paths.add(pathOf(url));
  for (const prefix of targets.cdn.prefixes) paths.add(`${pathOf(prefix)}*`);
  return [...paths];
}

/**
 * The paths in invalidations of at most `maxPaths` paths and `maxWildcards` wildcard paths each.
 * A batch with more wildcards than may be in progress at all could never be accepted: CloudFront
 * answers TooManyInvalidationsInProgress to it forever.
 */
export function invalidationBatches(
  paths: readonly string[],
  maxPaths: number,
  maxWildcards: number,
): string[][] {
  const batches: string[][] = [];
  let batch: string[] = [];
  let wildcards = 0;
  for (const path of paths) {
    const wildcard = path.endsWith('*') ? 1 : 0;
    if (batch.length > 0 && (batch.length >= maxPaths || wildcards + wildcard > maxWildcards)) {
      batches.push(batch);
      batch = [];
      wildcards = 0;
    }
    batch.push(path);
    wildcards += wildcard;
  }
  if (batch.length > 0) batches.push(batch);
  return batches;
}

/** Faults of the request itself: retrying the same invalidation cannot help. */
const REQUEST_FAULTS = new Set(['InvalidArgument', 'MissingBody', 'InconsistentQuantities', 'BatchTooLarge']);
/** Faults of the account: credentials, permissions, the distribution id. */
const ACCOUNT_FAULTS = new Set([
  'AccessDenied',
  'InvalidClientTokenId',
  'SignatureDoesNotMatch',
  'UnrecognizedClientException',
  'ExpiredToken',
  'NoSuchDistribution',
]);
/** CloudFront is at its limit of invalidations in progress, or throttles the API. */
const THROTTLES = new Set(['TooManyInvalidationsInProgress', 'Throttling', 'ThrottlingException']);

interface AwsError {
  name?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

/**
 * The SDK found no credentials (or could not resolve them) and sent nothing: the account cannot
 * purge until the deployment is fixed, like an AccessDenied. These come from the credential
 * providers and carry no $metadata.
 */
const CREDENTIAL_FAULTS = new Set(['CredentialsProviderError', 'TokenProviderError', 'ProviderError']);
const CREDENTIALS_HINT =
  'no AWS credentials could be resolved: set cdn.cloudfront.accessKeyId/secretAccessKey, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile (AWS_PROFILE) or an IAM role (web identity, ECS/EC2); purges to cloudfront wait (walpurge_cdn_provider_paused = 1) until a probe succeeds';

function classify(error: unknown): PurgeHttpError {
  const aws = error as AwsError;
  const name = aws.name ?? '';
  const status = aws.$metadata?.httpStatusCode;
  const noCredentials = status === undefined && CREDENTIAL_FAULTS.has(name);
  const providerRefusal = noCredentials || ACCOUNT_FAULTS.has(name) || status === 401 || status === 403;
  return new PurgeHttpError(
    `cloudfront CreateInvalidation failed (${status ?? 'no status'} ${name}): ${aws.message ?? String(error)}`,
    THROTTLES.has(name) ? 429 : status,
    undefined,
    {
      retriable: providerRefusal || !REQUEST_FAULTS.has(name),
      providerRefusal,
      cause: error,
      ...(noCredentials ? { hint: CREDENTIALS_HINT } : {}),
    },
  );
}

/**
 * AWS CloudFront `CreateInvalidation`, at most `maxPathsPerInvalidation` paths per call. Each batch
 * keeps one CallerReference across its retries, so a retry after a lost response is recognised by
 * CloudFront as the same invalidation rather than a new one. Tags are not supported by CloudFront.
 * CloudFront allows 3,000 paths and 15 wildcard paths in invalidations in progress: a batch waits
 * until it fits, and an invalidation's paths count until GetInvalidation reports it Completed.
 */
export class CloudFrontPurger implements Purger {
  readonly name = 'cloudfront';
  readonly stage = 'cdn' as const;
  private readonly client: CloudFrontClient;
  private readonly metrics: CdnMetrics;
  private readonly circuit: ProviderCircuit;
  private readonly bucket: TokenBucket | undefined;
  private readonly inFlight: InFlightBudget;
  /** Stops the completion watchers on close(). */
  private readonly closing = new AbortController();

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
    ({ metrics: this.metrics, circuit: this.circuit } = providerRuntime(
      this.name,
      config.circuitProbeIntervalMs,
      options,
    ));
    this.bucket = bucketFor(undefined, config.rateLimit, options.clock);
    this.inFlight = new InFlightBudget([config.maxPathsInFlight, config.maxWildcardPathsInFlight]);
  }

  count(targets: PurgeTargets): number {
    return targets.cdn.urls.length + targets.cdn.prefixes.length;
  }

  async purge(targets: PurgeTargets, context: PurgeContext): Promise<void> {
    for (const paths of invalidationBatches(
      cloudFrontPaths(targets),
      this.config.maxPathsPerInvalidation,
      this.config.maxWildcardPathsInFlight,
    )) {
      const wildcards = paths.filter((path) => path.endsWith('*')).length;
      const began = Date.now();
      const held = await this.inFlight.acquire([paths.length, wildcards], context.signal);
      const waitedMs = Date.now() - began;
      if (waitedMs > 0)
        this.metrics.throttledSeconds.inc({ provider: this.name, reason: 'in_flight' }, waitedMs / 1000);
      let id: string | undefined;
      try {
        id = await this.invalidate(paths, wildcards, context);
      } finally {
        if (id === undefined) this.inFlight.release(held);
      }
      this.metrics.cloudFrontPaths.inc(paths.length);
      void this.releaseWhenCompleted(id, held);
    }
  }

  private call(items: number, kind: string): CallAccounting {
    return {
      provider: this.name,
      kind,
      items,
      metrics: this.metrics,
      circuit: this.circuit,
      throttle: (signal) => takeFromBucket(this.bucket, 1, signal, this.name, this.metrics),
    };
  }

  private async invalidate(paths: string[], wildcards: number, context: PurgeContext): Promise<string> {
    const command = new CreateInvalidationCommand({
      DistributionId: this.config.distributionId,
      InvalidationBatch: {
        CallerReference: `walpurge-${randomUUID()}`,
        Paths: { Quantity: paths.length, Items: paths },
      },
    });
    const call = this.call(
      paths.length,
      wildcards === paths.length ? 'prefixes' : wildcards === 0 ? 'urls' : 'paths',
    );
    for (let attempt = 0; ; attempt += 1) {
      try {
        const output = await callProvider(
          async () => {
            try {
              return await this.client.send(command, { abortSignal: context.signal });
            } catch (error) {
              if (context.signal.aborted)
                throw new WalpurgeError(ErrorCode.Aborted, 'aborted', { cause: error });
              throw classify(error);
            }
          },
          context.signal,
          call,
        );
        return output.Invalidation?.Id ?? '';
      } catch (error) {
        if (!(error instanceof PurgeHttpError) || !error.retriable) throw error;
        const delay = backoffDelay(attempt, this.options.backoff);
        if (error.status === 429)
          this.metrics.throttledSeconds.inc({ provider: this.name, reason: 'retry_after' }, delay / 1000);
        context.onRetry?.(error, delay);
        await sleep(delay, context.signal);
      }
    }
  }

  /**
   * Frees an invalidation's in-flight paths once CloudFront reports it Completed, or after
   * maxCompletionWaitMs (the API might stay unreachable; CloudFront's own TooManyInvalidationsInProgress,
   * retried, is the backstop). Not a retry of the purge: the purge already succeeded.
   */
  private async releaseWhenCompleted(id: string, held: number[]): Promise<void> {
    const deadline = Date.now() + this.config.maxCompletionWaitMs;
    try {
      while (id !== '' && Date.now() < deadline) {
        await sleep(
          Math.min(this.config.completionPollMs, Math.max(0, deadline - Date.now())),
          this.closing.signal,
        );
        const status = await this.client
          .send(new GetInvalidationCommand({ DistributionId: this.config.distributionId, Id: id }), {
            abortSignal: this.closing.signal,
          })
          .then((output) => output.Invalidation?.Status)
          .catch(() => undefined);
        if (status === 'Completed') break;
      }
    } catch {
      // closing: nothing is in flight for this process any more
    } finally {
      this.inFlight.release(held);
    }
  }

  async close(): Promise<void> {
    this.closing.abort();
    this.client.destroy();
  }
}
