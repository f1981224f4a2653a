import type { BackoffOptions } from '@walpurge/core';

/** What every CDN driver needs besides its own config section. */
export interface CdnDriverOptions {
  requestTimeoutMs: number;
  backoff: BackoffOptions;
  env?: Record<string, string | undefined>;
}

export function stripScheme(url: string): string {
  return url.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '');
}
