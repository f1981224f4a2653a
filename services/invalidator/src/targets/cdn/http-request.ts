import { backoffDelay, ErrorCode, sleep, WalpurgeError, type BackoffOptions } from '@walpurge/core';

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
}

/** 4xx answers that blame the request itself: retrying the same purge cannot help. */
const REQUEST_FAULTS = new Set([400, 405, 413, 414, 422]);
const MAX_RETRY_AFTER_MS = 300_000;

export class PurgeHttpError extends WalpurgeError {
  constructor(
    message: string,
    readonly status: number | undefined,
    readonly retryAfterMs: number | undefined,
    options: { retriable: boolean; cause?: unknown },
  ) {
    super(ErrorCode.PurgeFailed, message, {
      retriable: options.retriable,
      cause: options.cause,
      hint:
        status === 401 || status === 403
          ? 'check the CDN credentials and their permissions; purges are retried until they succeed'
          : undefined,
    });
    this.name = 'PurgeHttpError';
  }
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
  options: Pick<SendOptions, 'signal' | 'timeoutMs' | 'alsoOk'>,
): Promise<HttpResponse> {
  let response: Response;
  try {
    response = await fetch(request.url, {
      method: request.method,
      headers: request.headers,
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
  throw new PurgeHttpError(
    `${describe(request)} answered ${response.status}: ${excerpt}`,
    response.status,
    retryAfterMs,
    {
      retriable: !REQUEST_FAULTS.has(response.status),
    },
  );
}

/**
 * Sends one purge request until it succeeds: 429 waits what Retry-After says, 5xx / timeouts /
 * network errors back off exponentially with jitter. Only request faults (400, 413, …) and abort
 * end it with an error.
 */
export async function sendWithRetry(request: HttpPurgeRequest, options: SendOptions): Promise<HttpResponse> {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await sendOnce(request, options);
    } catch (error) {
      if (!(error instanceof PurgeHttpError) || !error.retriable) throw error;
      const delay = error.retryAfterMs ?? backoffDelay(attempt, options.backoff);
      options.onRetry?.(error, delay);
      await sleep(delay, options.signal);
    }
  }
}

/** Runs `fn` over `items` with at most `limit` in flight; the first failure rejects. */
export async function mapLimit<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next] as T;
      next += 1;
      await fn(item);
    }
  });
  await Promise.all(workers);
}

/** Sends every request until it succeeds, at most `concurrency` at a time; the first that cannot succeed rejects. */
export async function sendAll(
  requests: readonly HttpPurgeRequest[],
  concurrency: number,
  options: SendOptions,
): Promise<void> {
  await mapLimit(requests, concurrency, async (request) => {
    await sendWithRetry(request, options);
  });
}
