import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface Reply {
  status: number;
  headers?: Record<string, string>;
  body?: string;
}

/**
 * A local stand-in for CDN APIs: records every request and answers with queued failures first
 * (429 + Retry-After, 500, …), then with `defaultReply`.
 */
export class RecordingServer {
  readonly requests: RecordedRequest[] = [];
  private readonly failures: Reply[] = [];
  private server: Server | undefined;
  /** Answer every request this late, so a test can catch purges in flight. */
  delayMs = 0;
  /** Requests received and not answered yet (a client that went away counts as answered). */
  inFlight = 0;
  defaultReply: (request: RecordedRequest) => Reply = () => ({
    status: 200,
    headers: { 'content-type': 'application/json' },
    body: '{"success":true,"errors":[]}',
  });

  private throttledUntil = 0;
  private throttleRetryAfter = '1';

  /**
   * Every request for the next `ms` gets 429 with `Retry-After: retryAfterSeconds` (a CDN account
   * over its API rate limit), before queued failures and the default reply.
   */
  throttle(ms: number, retryAfterSeconds = 1): void {
    this.throttledUntil = Date.now() + ms;
    this.throttleRetryAfter = String(retryAfterSeconds);
  }

  /** Ends a throttle period early. */
  unthrottle(): void {
    this.throttledUntil = 0;
  }

  get throttled(): boolean {
    return Date.now() < this.throttledUntil;
  }

  /** The next `times` requests get this reply (in order with other queued failures). */
  failNext(reply: Reply, times = 1): void {
    for (let i = 0; i < times; i += 1) this.failures.push(reply);
  }

  /** Requests that were answered with success. */
  get succeeded(): RecordedRequest[] {
    return this.requests.filter(
      (request) => (request as RecordedRequest & { status?: number }).status === 200,
    );
  }

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const recorded: RecordedRequest & { status?: number } = {
          method: req.method ?? '',
          path: req.url ?? '',
          headers: req.headers,
          body: Buffer.concat(chunks).toString('utf8'),
        };
        this.requests.push(recorded);
        const reply: Reply = this.throttled
          ? {
              status: 429,
              headers: { 'retry-after': this.throttleRetryAfter, 'content-type': 'application/json' },
              body: '{"success":false,"errors":[{"code":10000,"message":"rate limited"}]}',
            }
          : (this.failures.shift() ?? this.defaultReply(recorded));
        recorded.status = reply.status;
        this.inFlight += 1;
        let answered = false;
        const answer = (): void => {
          if (answered) return;
          answered = true;
          this.inFlight -= 1;
          if (res.destroyed) return;
          res.writeHead(reply.status, reply.headers ?? {});
          res.end(reply.body ?? '');
        };
        res.on('close', answer);
        if (this.delayMs > 0) setTimeout(answer, this.delayMs);
        else answer();
      });
    });
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
