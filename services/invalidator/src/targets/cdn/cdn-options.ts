import { ErrorCode, WalpurgeError, type BackoffOptions, type Clock, type Logger } from '@walpurge/core';
import type { PurgeContext } from '../purger.js';
import { createCdnMetrics, type CdnMetrics } from './cdn-metrics.js';
import type { SendOptions } from './http-request.js';
import { ProviderCircuit } from './provider-circuit.js';

/** What every CDN driver needs besides its own config section. */
export interface CdnDriverOptions {
  requestTimeoutMs: number;
  backoff: BackoffOptions;
  env?: Record<string, string | undefined>;
  /** Default: metrics on a registry of their own (tests). */
  metrics?: CdnMetrics;
  logger?: Logger;
  /** Rate limits and the circuit's probe interval read this clock (tests inject one). */
  clock?: Clock;
}

/** The metrics and circuit of one provider. */
export function providerRuntime(
  provider: string,
  circuitProbeIntervalMs: number,
  options: CdnDriverOptions,
): { metrics: CdnMetrics; circuit: ProviderCircuit } {
  const metrics = options.metrics ?? createCdnMetrics();
  return {
    metrics,
    circuit: new ProviderCircuit(provider, circuitProbeIntervalMs, metrics, options.logger, options.clock),
  };
}

/**
 * A rendered CDN URL or prefix must be an absolute http(s) URL with a host. One that is not (a
 * row value that rendered the whole URL, percent-encoded, in place of the host) can never purge
 * anything: a permanent error, so the event is isolated and dead-lettered instead of retried.
 * (validate and start refuse templates that do not start with a literal scheme://host.)
 */
export function parseTargetUrl(provider: string, url: string): URL {
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    parsed = undefined;
  }
  if (!parsed || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') || parsed.host === '') {
    throw new WalpurgeError(
      ErrorCode.PurgeFailed,
      `${provider}: '${url.split('?')[0] ?? url}' is not an absolute http(s) URL and cannot be purged`,
      {
        retriable: false,
        hint: 'CDN urls and prefixes templates must start with a literal scheme://host (walpurge validate checks this)',
      },
    );
  }
  return parsed;
}

export function stripScheme(url: string): string {
  return url.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '');
}

/**
 * The API token of a CDN whose config section may leave it out in favour of an environment
 * variable (`cdn.<section>.apiToken`, else `envName`); a missing one fails at startup, not at the
 * first purge.
 */
export function requireApiToken(
  section: string,
  configured: string | undefined,
  envName: string,
  options: CdnDriverOptions,
): string {
  const token = configured ?? (options.env ?? process.env)[envName];
  if (!token) {
    throw new WalpurgeError(ErrorCode.ConfigInvalid, `cdn.${section}: no API token`, {
      hint: `set cdn.${section}.apiToken (e.g. \${${envName}}) or the ${envName} environment variable`,
    });
  }
  return token;
}

/** How every HTTP driver sends one request of a purge: the purge's abort signal and retry hook, the driver's timeout and backoff. */
export function sendOptions(
  context: PurgeContext,
  options: CdnDriverOptions,
  alsoOk?: readonly number[],
  call?: SendOptions['call'],
): SendOptions {
  return {
    signal: context.signal,
    timeoutMs: options.requestTimeoutMs,
    backoff: options.backoff,
    onRetry: context.onRetry,
    alsoOk,
    call,
  };
}
