import { WalpurgeError } from '@walpurge/core';
import type { PurgeTargets } from '@walpurge/rules';

export interface PurgeContext {
  signal: AbortSignal;
  /** Called before a driver waits to retry one request (429 Retry-After, 5xx, timeout). */
  onRetry?: (error: unknown, delayMs: number) => void;
}

/**
 * Marks a permanent refusal raised only after every other entry of the purge was done (a tag key
 * of another type): the event's CDN purge is then still owed, and safe (no stale Redis entry is
 * left for the CDN to refill from, except the refused one itself).
 */
export const OTHERS_PURGED = 'othersPurged';

export function refusedAfterOthersPurged(error: unknown): boolean {
  return error instanceof WalpurgeError && error.details?.[OTHERS_PURGED] === true;
}

/** What a successful purge observed besides success, for metrics. */
export interface PurgeReport {
  /** Entries the write-behind echo kept because the cache already held the committed version. */
  echoKept?: number;
  /** Namespace bumps that changed nothing: the version already was the change's LSN or newer. */
  namespacesAlreadyNewer?: number;
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
  purge(targets: PurgeTargets, context: PurgeContext): Promise<PurgeReport | void>;
  /**
   * Why this target cannot take purges right now (e.g. its connection is down), for readiness;
   * undefined when it can. Absent: always ready (HTTP drivers open a connection per request).
   */
  notReadyReason?(): string | undefined;
  /** Refuses at the start what retrying never fixes (a certificate the TLS handshake rejects). */
  check?(): Promise<void>;
  close(): Promise<void>;
}
