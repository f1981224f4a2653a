import type { Redis } from 'ioredis';
import type { Logger } from '@walpurge/core';
import { errorMessage } from '@walpurge/core';
import type { L1Cache } from './l1-cache.js';
import type { ClientMetrics } from './metrics.js';

const INVALIDATE_CHANNEL = '__redis__:invalidate';

/** Back-off between failed tracking set-ups: doubling from the first delay up to the cap, ms. */
export const TRACKING_RETRY = { firstMs: 100, maxMs: 30_000 } as const;

/** Delay before set-up attempt `failures + 1`, with ±25 % jitter so a fleet does not retry in step. */
export function trackingRetryDelayMs(failures: number, random: () => number = Math.random): number {
  const base = Math.min(TRACKING_RETRY.maxMs, TRACKING_RETRY.firstMs * 2 ** Math.max(0, failures - 1));
  return Math.round(base * (0.75 + random() / 2));
}

/**
 * Keeps the in-process level honest with Redis server-assisted client-side caching in broadcast
 * mode: a dedicated connection turns on `CLIENT TRACKING ... REDIRECT <its own id> BCAST PREFIX
 * <prefix>` and subscribes to `__redis__:invalidate`, so Redis pushes the name of every key under
 * the prefix that changes, is purged or expires — whoever changed it (the invalidator, other
 * processes, redis-cli).
 *
 * Tracking lives and dies with this one connection: on close, L1 is flushed and bypassed; on
 * reconnect, tracking and the subscription are set up again before L1 is trusted again.
 */
export class InvalidationTracker {
  private readonly connection: Redis;
  private closed = false;
  private trackingId: number | undefined;
  /** Set-up failures in a row; reset by a successful set-up. */
  private failures = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private resolveFirstSetUp: (active: boolean) => void = () => {};
  private readonly firstSetUp = new Promise<boolean>((resolve) => {
    this.resolveFirstSetUp = resolve;
  });

  constructor(
    redis: Redis,
    private readonly prefix: string,
    private readonly l1: L1Cache,
    private readonly metrics: ClientMetrics,
    private readonly logger: Logger,
  ) {
    this.connection = redis.duplicate({
      // Tracking must be switched on before SUBSCRIBE (a subscribed RESP2 connection accepts nothing
      // else), so re-subscribing is ours to do, in order, on every (re)connect.
      autoResubscribe: false,
      lazyConnect: true,
      enableOfflineQueue: true,
      connectionName: 'walpurge-client-tracking',
    });
    this.connection.on('messageBuffer', (_channel: Buffer, message: unknown) => this.onMessage(message));
    this.connection.on('ready', () => void this.setUp());
    this.connection.on('close', () => this.onLost('connection closed'));
    this.connection.on('error', (error: unknown) =>
      this.logger.debug({ err: error }, 'tracking connection error'),
    );
  }

  /** Connects; resolves true once L1 may be used, false if tracking could not be set up (L1 stays bypassed). */
  async start(): Promise<boolean> {
    try {
      await this.connection.connect();
    } catch (error) {
      this.logger.warn({ err: error }, 'L1 disabled until the tracking connection reaches Redis');
      return false;
    }
    return this.firstSetUp;
  }

  /** Redis client id of the connection receiving invalidations while tracking is live (tests, diagnostics). */
  clientId(): number | undefined {
    return this.l1.isActive ? this.trackingId : undefined;
  }

  private async setUp(): Promise<void> {
    try {
      const id = await this.connection.client('ID');
      const prefixArgs = this.prefix ? ['PREFIX', this.prefix] : [];
      await this.connection.call('CLIENT', 'TRACKING', 'on', 'REDIRECT', String(id), 'BCAST', ...prefixArgs);
      await this.connection.subscribe(INVALIDATE_CHANNEL);
      this.trackingId = id;
      this.failures = 0;
      this.l1.activate();
      this.logger.debug({ prefix: this.prefix }, 'L1 invalidation tracking active');
      this.resolveFirstSetUp(true);
    } catch (error) {
      this.failures += 1;
      this.metrics.trackingSetupFailures.inc();
      const retryInMs = trackingRetryDelayMs(this.failures);
      this.logger.warn(
        { err: error, failures: this.failures, retryInMs },
        `L1 disabled: could not enable Redis tracking: ${errorMessage(error)}`,
      );
      this.onLost('tracking set-up failed');
      this.resolveFirstSetUp(false);
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
      this.metrics.l1Flushes.inc({ reason: 'flushall' });
      this.l1.flush();
      return;
    }
    const keys = Array.isArray(message) ? message : [message];
    for (const raw of keys) {
      const full = Buffer.isBuffer(raw) ? raw.toString('utf8') : String(raw);
      if (!full.startsWith(this.prefix)) continue;
      this.l1.invalidate(full.slice(this.prefix.length));
      this.metrics.l1Invalidations.inc();
    }
  }

  private onLost(reason: string): void {
    if (!this.l1.isActive) return;
    this.metrics.l1Flushes.inc({ reason: 'tracking_lost' });
    this.logger.warn({ reason }, 'L1 flushed and bypassed until Redis invalidation tracking is back');
    this.l1.deactivate();
  }

  async stop(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.l1.deactivate();
    try {
      await this.connection.quit();
    } catch {
      this.connection.disconnect();
    }
  }
}
