import type { RecordedRequest, RecordingServer, Reply } from './recording-server.js';

/**
 * Answer modes of the recording server for the CDN driver tests, kept apart from the server
 * itself. Each replaces `defaultReply`; queued `failNext` replies still come first.
 */

/** Records when each request arrived (ms since the epoch), in order; install it after the other modes (it wraps them). */
export function recordArrivals(server: RecordingServer): number[] {
  const arrivals: number[] = [];
  const previous = server.defaultReply;
  server.defaultReply = (request) => {
    arrivals.push(Date.now());
    return previous(request);
  };
  return arrivals;
}

/**
 * 429 with the given Retry-After (e.g. '0', or a date in the past) to every request during
 * `periodMs` after the first one, then the previous default reply.
 */
export function tooManyRequestsFor(server: RecordingServer, periodMs: number, retryAfter: string): void {
  const previous = server.defaultReply;
  let firstAt: number | undefined;
  server.defaultReply = (request) => {
    firstAt ??= Date.now();
    if (Date.now() - firstAt < periodMs)
      return { status: 429, headers: { 'retry-after': retryAfter }, body: '{}' };
    return previous(request);
  };
}

/** Answers by request path: the first matching entry wins, else the previous default reply. */
export function replyByPath(server: RecordingServer, routes: Array<[RegExp, Reply]>): void {
  const previous = server.defaultReply;
  server.defaultReply = (request: RecordedRequest) =>
    routes.find(([path]) => path.test(request.path))?.[1] ?? previous(request);
}

/** The largest number of requests that arrived within any one-second window. */
export function peakPerSecond(arrivals: readonly number[]): number {
  let peak = 0;
  let start = 0;
  for (let end = 0; end < arrivals.length; end += 1) {
    while ((arrivals[end] ?? 0) - (arrivals[start] ?? 0) >= 1000) start += 1;
    peak = Math.max(peak, end - start + 1);
  }
  return peak;
}
