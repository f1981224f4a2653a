import type { Redis } from 'ioredis';
import type { Logger } from '@walpurge/core';
import { errorMessage } from '@walpurge/core';
import type { ClientMetrics } from './metrics.js';

const INVALIDATE_CHANNEL = '__redis__:invalidate';

/** Back-off between failed tracking set-ups: doubling from the first delay up to the cap, ms. */
export const TRACKING_RETRY = { firstMs: 100, maxMs: 30_000 } as const;

/** Delay before set-up attempt `failures + 1`, with ±25 % jitter so a fleet does not retry in step. */
export function trackingRetryDelayMs(failures: number, random: () => number = Math.random): number {
  const base = Math.min(TRACKING_RETRY.maxMs, TRACKING_RETRY.firstMs * 2 ** Math.max(0, failures - 1));
  return Math.round(base * (0.75 + random() / 2));
}

export interface TrackingLinkEvents {
  /** Tracking and the subscription are set up: from now on every change on this server is pushed. */
  onLive(): void;
  /** Messages from this server may have been missed (closed, set-up failed). */
  onLost(reason: string): void;
  /** Full key names that changed on this server, or null when the server flushed everything. */
  onInvalidate(keys: readonly string[] | null): void;
}

/**
 * Redis server-assisted client-side caching, broadcast mode, on ONE server: a dedicated connection
 * turns on `CLIENT TRACKING on REDIRECT <its own id> BCAST PREFIX <prefix>` and subscribes to
 * `__redis__:invalidate`, so that server pushes the name of every key under the prefix that
 * changes, is purged or expires — whoever changed it. A server only tells about its own keys: a
 * Redis Cluster needs one link per master (InvalidationTracker).
 */
export class TrackingLink {
  private closed = false;
  private trackingId: number | undefined;
  /** Set-up failures in a row; reset by a successful set-up. */
  private failures = 0;
  private retryTimer: NodeJS.Timeout | undefined;

  /** `connection`: a lazyConnect connection with autoResubscribe off, owned by the link from now on. */
  constructor(
    private readonly connection: Redis,
    private readonly prefix: string,
    private readonly events: TrackingLinkEvents,
    private readonly metrics: ClientMetrics,
    private readonly logger: Logger,
  ) {
    this.connection.on('messageBuffer', (_channel: Buffer, message: unknown) => this.onMessage(message));
    this.connection.on('ready', () => void this.setUp());
    this.connection.on('close', () => this.lost('connection closed'));
    this.connection.on('error', (error: unknown) =>
      this.logger.debug({ err: error }, 'tracking connection error'),
    );
  }

  /** Redis client id of the connection receiving invalidations, once set up. */
  get clientId(): number | undefined {
    return this.trackingId;
  }

  get isLive(): boolean {
    return this.trackingId !== undefined;
  }

  /** Connects; set-up follows on 'ready'. Rejects if the first connection attempt fails. */
  async connect(): Promise<void> {
    await this.connection.connect();
  }

  private async setUp(): Promise<void> {
    try {
      const id = await this.connection.client('ID');
      const prefixArgs = this.prefix ? ['PREFIX', this.prefix] : [];
      await this.connection.call('CLIENT', 'TRACKING', 'on', 'REDIRECT', String(id), 'BCAST', ...prefixArgs);
      await this.connection.subscribe(INVALIDATE_CHANNEL);
      if (this.closed) return;
      this.trackingId = id;
      this.failures = 0;
      this.events.onLive();
    } catch (error) {
      this.failures += 1;
      this.metrics.trackingSetupFailures.inc();
      const retryInMs = trackingRetryDelayMs(this.failures);
      this.logger.warn(
        { err: error, failures: this.failures, retryInMs },
        `L1 disabled: could not enable Redis tracking: ${errorMessage(error)}`,
      );
      this.lost('tracking set-up failed');
      this.retryLater(retryInMs);
    }
  }

  /**
   * Drops the connection (it may be half set up: tracking on, not subscribed) and opens it again
   * after `delayMs`. Not through ioredis' own reconnect: that fires at once after a connection that
   * reached 'ready', so a refusal that lasts (an ACL without CLIENT TRACKING, a proxy that does not
   * support it) would be retried every few ms forever.
   */
  private retryLater(delayMs: number): void {
    if (this.closed) return;
    this.connection.disconnect(false);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (this.closed) return;
      // A failed connect is retried by ioredis itself; its 'ready' runs the set-up again.
      this.connection.connect().catch((error: unknown) => {
        this.logger.debug({ err: error }, 'tracking connection: reconnect failed');
      });
    }, delayMs);
    this.retryTimer.unref();
  }

  private onMessage(message: unknown): void {
    // RESP2 invalidation payload: an array of key names, or null when the whole db was flushed.
    if (message === null || message === undefined) {
      this.events.onInvalidate(null);
      return;
    }
    const raw = Array.isArray(message) ? (message as unknown[]) : [message];
    this.events.onInvalidate(raw.map((key) => (Buffer.isBuffer(key) ? key.toString('utf8') : String(key))));
  }

  private lost(reason: string): void {
    this.trackingId = undefined;
    if (!this.closed) this.events.onLost(reason);
  }

  async stop(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    try {
      await this.connection.quit();
    } catch {
      this.connection.disconnect();
    }
  }
}
