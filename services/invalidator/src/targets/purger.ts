import type { PurgeTargets } from '@walpurge/rules';

export interface PurgeContext {
  signal: AbortSignal;
  /** Called before a driver waits to retry one request (429 Retry-After, 5xx, timeout). */
  onRetry?: (error: unknown, delayMs: number) => void;
}

/**
 * One purge destination (Redis, a CDN). `purge` resolves once every entry it is responsible for
 * is purged; it is idempotent, so the caller may run the same targets again after a failure.
 */
export interface Purger {
  /** Metric label and log name: `redis`, `cloudflare`, … */
  readonly name: string;
  /** Redis purgers run before CDN purgers: a CDN refilled from a stale Redis would cache stale data again. */
  readonly stage: 'redis' | 'cdn';
  /** How many of these targets this purger would act on (0 → it is not called). */
  count(targets: PurgeTargets): number;
  purge(targets: PurgeTargets, context: PurgeContext): Promise<void>;
  close(): Promise<void>;
}
