import type { Redis } from 'ioredis';
import type { Logger } from '@walpurge/core';
import { errorMessage } from '@walpurge/core';
import type { L1Cache } from './l1-cache.js';
import type { ClientMetrics } from './metrics.js';

const INVALIDATE_CHANNEL = '__redis__:invalidate';

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
      this.l1.activate();
      this.logger.debug({ prefix: this.prefix }, 'L1 invalidation tracking active');
      this.resolveFirstSetUp(true);
    } catch (error) {
      this.logger.warn(
        { err: error },
        `L1 disabled: could not enable Redis tracking: ${errorMessage(error)}`,
      );
      this.onLost('tracking set-up failed');
      this.resolveFirstSetUp(false);
      // Drop the connection so ioredis reconnects and we try again on its next 'ready'.
      if (!this.closed) this.connection.disconnect(true);
    }
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
    this.l1.deactivate();
    try {
      await this.connection.quit();
    } catch {
      this.connection.disconnect();
    }
  }
}
