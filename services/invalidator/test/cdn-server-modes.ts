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

/**
 * A CloudFront API: CreateInvalidation answers a new id each time (I1, I2, …) with the request's
 * CallerReference; GetInvalidation reports InProgress until `complete(id)` is called.
 */
export function cloudFrontApi(server: RecordingServer): {
  complete: (id: string) => void;
  created: () => number;
} {
  // Like CloudFront: at most 15 wildcard paths in invalidations in progress; a batch that would
  // exceed it is answered TooManyInvalidationsInProgress (whatever its own size).
  const wildcardsInProgress = new Map<string, number>();
  let created = 0;
  const invalidation = (id: string, status: string, reference: string): string =>
    `<?xml version="1.0"?><Invalidation xmlns="http://cloudfront.amazonaws.com/doc/2020-05-31/"><Id>${id}</Id><Status>${status}</Status><CreateTime>2026-01-01T00:00:00Z</CreateTime><InvalidationBatch><Paths><Quantity>0</Quantity></Paths><CallerReference>${reference}</CallerReference></InvalidationBatch></Invalidation>`;
  server.defaultReply = (request): Reply => {
    if (request.method === 'POST') {
      const wildcards = [...request.body.matchAll(/<Path>([^<]*)<\/Path>/g)].filter((m) =>
        (m[1] ?? '').endsWith('*'),
      ).length;
      const inProgress = [...wildcardsInProgress.values()].reduce((sum, n) => sum + n, 0);
      if (inProgress + wildcards > 15)
        return {
          status: 400,
          headers: { 'content-type': 'text/xml' },
          body: '<?xml version="1.0"?><ErrorResponse><Error><Type>Sender</Type><Code>TooManyInvalidationsInProgress</Code><Message>Processing your request will cause you to exceed the maximum number of in-progress wildcard invalidations.</Message></Error><RequestId>r1</RequestId></ErrorResponse>',
        };
      created += 1;
      wildcardsInProgress.set(`I${created}`, wildcards);
      const reference = /<CallerReference>([^<]+)</.exec(request.body)?.[1] ?? 'x';
      return {
        status: 201,
        headers: { 'content-type': 'text/xml', location: `https://cloudfront.test/invalidation/I${created}` },
        body: invalidation(`I${created}`, 'InProgress', reference),
      };
    }
    const id = /\/invalidation\/([^/?]+)/.exec(request.path)?.[1] ?? '';
    return {
      status: 200,
      headers: { 'content-type': 'text/xml' },
      body: invalidation(id, wildcardsInProgress.has(id) ? 'InProgress' : 'Completed', 'x'),
    };
  };
  return { complete: (id) => wildcardsInProgress.delete(id), created: () => created };
}
