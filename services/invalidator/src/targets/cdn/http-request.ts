import { SpanKind } from '@opentelemetry/api';
import {
  activeTracer,
  backoffDelay,
  ErrorCode,
  inSpan,
  sleep,
  WalpurgeError,
  type BackoffOptions,
} from '@walpurge/core';
import type { CallOutcome, CdnMetrics } from './cdn-metrics.js';
import type { ProviderCircuit } from './provider-circuit.js';

export interface HttpPurgeRequest {
  method: string;
  url: string;
  headers?: Record<string, string>;
  body?: string;
}

export interface HttpResponse {
  status: number;
  body: string;
}

export interface SendOptions {
  signal: AbortSignal;
  timeoutMs: number;
  backoff: BackoffOptions;
  onRetry?: (error: unknown, delayMs: number) => void;
  /** Statuses that count as success besides 2xx (e.g. 404 "not cached" for a Varnish PURGE). */
  alsoOk?: readonly number[];
  /** Metrics, rate limit and circuit of the provider this request goes to. */
  call?: CallAccounting;
}

/** How one API call is paced, paused and counted. */
export interface CallAccounting {
  provider: string;
  /** Metric label: urls | tags | prefixes. */
  kind: string;
  /** Items the call carries, for walpurge_cdn_items_total. */
  items: number;
  metrics: CdnMetrics;
  /** Waits on the provider's rate limit; called before every attempt (a retry is another call). */
  throttle?: (signal: AbortSignal) => Promise<void>;
  circuit?: ProviderCircuit;
  /**
   * Whether a failed answer blames the account (credentials, zone/service id) rather than the
   * request; 401 and 403 always do. Such answers pause the provider (see provider-circuit.ts).
   */
  blamesAccount?: (status: number, body: string) => boolean;
}

/** 4xx answers that blame the request itself: retrying the same purge cannot help. */
const REQUEST_FAULTS = new Set([400, 405, 413, 414, 422]);
const MAX_RETRY_AFTER_MS = 300_000;

export class PurgeHttpError extends WalpurgeError {
  /** The answer blames the account (credentials, zone/service id), not this request: see ProviderCircuit. */
  readonly providerRefusal: boolean;

  constructor(
    message: string,
    readonly status: number | undefined,
    readonly retryAfterMs: number | undefined,
    options: { retriable: boolean; cause?: unknown; providerRefusal?: boolean; hint?: string },
  ) {
    super(ErrorCode.PurgeFailed, message, {
      retriable: options.retriable,
      cause: options.cause,
      hint: options.hint
        ? options.hint
        : options.providerRefusal
          ? 'check the CDN credentials, their permissions and the zone/service/distribution id; purges to this provider wait (walpurge_cdn_provider_paused = 1) until a probe succeeds'
          : undefined,
    });
    this.name = 'PurgeHttpError';
    this.providerRefusal = options.providerRefusal ?? false;
  }
}

/** The metric outcome of a failed call. */
export function outcomeOf(error: unknown): CallOutcome {
  if (error instanceof PurgeHttpError) {
    if (error.providerRefusal) return 'provider_refused';
    if (error.status === 429) return 'throttled';
  }
  return error instanceof WalpurgeError && !error.retriable ? 'rejected' : 'transient';
}

/** Retry-After is either delay-seconds or an HTTP date. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.min(MAX_RETRY_AFTER_MS, Math.round(Number(trimmed) * 1000));
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.min(MAX_RETRY_AFTER_MS, Math.max(0, date - now));
}

/** The URL without query string, so nothing secret-looking in a query ends up in an error message. */
function describe(request: HttpPurgeRequest): string {
  return `${request.method} ${request.url.split('?')[0] ?? request.url}`;
}

export async function sendOnce(
  request: HttpPurgeRequest,
  options: Pick<SendOptions, 'signal' | 'timeoutMs' | 'alsoOk' | 'call'>,
): Promise<HttpResponse> {
  let headers: Headers;
  try {
    // Checked here rather than left to fetch: a header value no HTTP request can carry (a character
    // above U+00FF, a NUL) throws before anything is sent, the same on every retry. Permanent,
    // so the lane isolates the event that carries it instead of retrying the whole batch forever.
    headers = new Headers(request.headers);
    new URL(request.url);
  } catch (error) {
    throw new PurgeHttpError(
      `${describe(request)} cannot be sent: ${(error as Error).message}`,
      undefined,
      undefined,
      { retriable: false, cause: error },
    );
  }
  let response: Response;
  try {
    response = await fetch(request.url, {
      method: request.method,
      headers,
      body: request.body,
      signal: AbortSignal.any([options.signal, AbortSignal.timeout(options.timeoutMs)]),
    });
  } catch (error) {
    if (options.signal.aborted) throw new WalpurgeError(ErrorCode.Aborted, 'aborted', { cause: error });
    throw new PurgeHttpError(
      `${describe(request)} failed: ${(error as Error).message}`,
      undefined,
      undefined,
      { retriable: true, cause: error },
    );
  }
  const body = await response.text().catch(() => '');
  if (response.ok || options.alsoOk?.includes(response.status)) return { status: response.status, body };
  const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'));
  const excerpt = body.length > 300 ? `${body.slice(0, 300)}…` : body;
  const providerRefusal =
    response.status === 401 ||
    response.status === 403 ||
    (options.call?.blamesAccount?.(response.status, body) ?? false);
  throw new PurgeHttpError(
    `${describe(request)} answered ${response.status}: ${excerpt}`,
    response.status,
    retryAfterMs,
    { retriable: providerRefusal || !REQUEST_FAULTS.has(response.status), providerRefusal },
  );
}

/**
 * One API call as the provider sees it: paced by its bucket, counted by outcome, and, when the
 * account is refused, held by the provider's circuit until a probe succeeds.
 */
export async function callProvider<T>(
  send: () => Promise<T>,
  signal: AbortSignal,
  call: CallAccounting | undefined,
): Promise<T> {
  if (!call) return send();
  const tracer = activeTracer('@walpurge/invalidator');
  // Tracing off: no span options built per call.
  const traced = tracer
    ? (): Promise<T> =>
        inSpan(
          tracer,
          `walpurge.cdn.${call.provider}`,
          {
            kind: SpanKind.CLIENT,
            attributes: { 'walpurge.cdn.kind': call.kind, 'walpurge.count': call.items },
          },
          send,
        )
    : send;
  const attempt = async (): Promise<T> => {
    await call.throttle?.(signal);
    try {
      const result = await traced();
      call.metrics.apiCalls.inc({ provider: call.provider, kind: call.kind, outcome: 'success' });
      call.metrics.items.inc({ provider: call.provider, kind: call.kind }, call.items);
      return result;
    } catch (error) {
      if (!signal.aborted)
        call.metrics.apiCalls.inc({ provider: call.provider, kind: call.kind, outcome: outcomeOf(error) });
      throw error;
    }
  };
  return call.circuit ? call.circuit.run(attempt, signal) : attempt();
}

/**
 * How long to wait before retrying: what Retry-After says, but never less than the backoff, so
 * `Retry-After: 0` or a date in the past cannot turn retries into a busy loop.
 */
export function retryDelay(error: PurgeHttpError, attempt: number, backoff: BackoffOptions): number {
  return Math.max(error.retryAfterMs ?? 0, backoffDelay(attempt, backoff));
}

/**
 * Sends one purge request until it succeeds: 429 waits what Retry-After says (at least the
 * backoff), 5xx / timeouts / network errors back off exponentially with jitter, a refused account
 * waits in the provider's circuit. Only request faults (400, 413, …, or a request that cannot be
 * sent at all) and abort end it with an error.
 */
export async function sendWithRetry(request: HttpPurgeRequest, options: SendOptions): Promise<HttpResponse> {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await callProvider(() => sendOnce(request, options), options.signal, options.call);
    } catch (error) {
      if (!(error instanceof PurgeHttpError) || !error.retriable) throw error;
      const delay = retryDelay(error, attempt, options.backoff);
      if (error.status === 429 && options.call)
        options.call.metrics.throttledSeconds.inc(
          { provider: options.call.provider, reason: 'retry_after' },
          delay / 1000,
        );
      options.onRetry?.(error, delay);
      await sleep(delay, options.signal);
    }
  }
}

/**
 * Runs `fn` over `items` with at most `limit` in flight. The first failure aborts the siblings
 * in flight (through the signal `fn` receives) and starts no new ones; the call settles only
 * after every started `fn` has, so no retry of this call outlives it. Rejects with that first failure.
 */
export async function mapLimit<T>(
  items: readonly T[],
  limit: number,
  signal: AbortSignal,
  fn: (item: T, signal: AbortSignal) => Promise<void>,
): Promise<void> {
  const siblings = new AbortController();
  const combined = AbortSignal.any([signal, siblings.signal]);
  let next = 0;
  let failure: { error: unknown } | undefined;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length && failure === undefined && !combined.aborted) {
      const item = items[next] as T;
      next += 1;
      try {
        await fn(item, combined);
      } catch (error) {
        if (failure === undefined) {
          failure = { error };
          siblings.abort();
        }
        return;
      }
    }
  });
  await Promise.all(workers);
  if (failure !== undefined) throw failure.error;
  if (signal.aborted) throw new WalpurgeError(ErrorCode.Aborted, 'aborted');
}

/** Sends every request until it succeeds, at most `concurrency` at a time; the first that cannot succeed rejects (see mapLimit). */
export async function sendAll(
  requests: ReadonlyArray<{ request: HttpPurgeRequest; call?: CallAccounting }>,
  concurrency: number,
  options: SendOptions,
): Promise<void> {
  await mapLimit(requests, concurrency, options.signal, async ({ request, call }, signal) => {
    await sendWithRetry(request, { ...options, signal, call: call ?? options.call });
  });
}
