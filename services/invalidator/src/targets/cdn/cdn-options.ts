import { ErrorCode, WalpurgeError, type BackoffOptions } from '@walpurge/core';
import type { PurgeContext } from '../purger.js';
import type { SendOptions } from './http-request.js';

/** What every CDN driver needs besides its own config section. */
export interface CdnDriverOptions {
  requestTimeoutMs: number;
  backoff: BackoffOptions;
  env?: Record<string, string | undefined>;
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
): SendOptions {
  return {
    signal: context.signal,
    timeoutMs: options.requestTimeoutMs,
    backoff: options.backoff,
    onRetry: context.onRetry,
    alsoOk,
  };
}
