import type { Cluster, Redis, RedisOptions } from 'ioredis';
import type { Logger } from '@walpurge/core';
import type { CacheRedis } from './cache-redis.js';
import type { L1Cache } from './l1-cache.js';
import type { ClientMetrics } from './metrics.js';
import { TrackingLink } from './tracking-link.js';

/** Options of every tracking connection. */
const TRACKING_CONNECTION: RedisOptions = {
  // Tracking must be switched on before SUBSCRIBE (a subscribed RESP2 connection accepts nothing
  // else), so re-subscribing is ours to do, in order, on every (re)connect.
  autoResubscribe: false,
  lazyConnect: true,
  enableOfflineQueue: true,
  connectionName: 'walpurge-client-tracking',
};

/**
 * Keeps the in-process level honest with Redis invalidation tracking (TrackingLink): one link on a
 * standalone Redis, one link per master on a Redis Cluster (a server pushes only its own keys).
 *
 * L1 is trusted only while EVERY link is live: when one closes or fails to set up, messages from
 * its server may be lost, so L1 is flushed and bypassed until all are back. On a cluster, masters
 * that appear (failover, resharding) get a link, those that leave lose theirs.
 */
export class InvalidationTracker {
  private readonly links = new Map<string, TrackingLink>();
  private closed = false;
  private resolveFirstSetUp: (active: boolean) => void = () => {};
  private readonly firstSetUp = new Promise<boolean>((resolve) => {
    this.resolveFirstSetUp = resolve;
  });
  private readonly onTopology = () => this.syncMasters();

  constructor(
    private readonly redis: CacheRedis,
    private readonly prefix: string,
    private readonly l1: L1Cache,
    private readonly metrics: ClientMetrics,
    private readonly logger: Logger,
    /** Told of every key an invalidation message names (after L1 dropped it); `held`: L1 had it. */
    private readonly onInvalidated?: (key: string, held: boolean) => void,
  ) {}

  /** Connects; resolves true once L1 may be used, false if tracking could not be set up (L1 stays bypassed). */
  async start(): Promise<boolean> {
    if (this.redis.isCluster) {
      const cluster = this.redis as Cluster;
      if (cluster.status !== 'ready') {
        // The masters are known once the slot map is loaded; a client closed meanwhile never gets there.
        await new Promise<void>((resolve) => {
          const done = () => {
            cluster.off('ready', done).off('end', done);
            resolve();
          };
          cluster.once('ready', done).once('end', done);
        });
        if (this.closed || (cluster.status as string) !== 'ready') return false;
      }
      cluster.on('+node', this.onTopology).on('-node', this.onTopology).on('refresh', this.onTopology);
      this.syncMasters();
    } else {
      this.addLink('standalone', (this.redis as Redis).duplicate(TRACKING_CONNECTION));
    }
    const links = [...this.links.values()];
    try {
      await Promise.all(links.map((link) => link.connect()));
    } catch (error) {
      this.logger.warn({ err: error }, 'L1 disabled until the tracking connections reach Redis');
      return false;
    }
    return this.firstSetUp;
  }

  /** Redis client id of the (first) connection receiving invalidations while L1 is live (tests, diagnostics). */
  clientId(): number | undefined {
    if (!this.l1.isActive) return undefined;
    return [...this.links.values()][0]?.clientId;
  }

  /** Cluster: one link per master in the client's current topology. */
  private syncMasters(): void {
    if (this.closed) return;
    const cluster = this.redis as Cluster;
    const masters = new Map<string, Redis>(
      cluster.nodes('master').map((node) => [`${node.options.host}:${node.options.port}`, node]),
    );
    for (const [address, node] of masters) {
      if (this.links.has(address)) continue;
      const link = this.addLink(address, node.duplicate(TRACKING_CONNECTION));
      link.connect().catch((error: unknown) => {
        this.logger.warn({ err: error, master: address }, 'tracking connection to a new master failed');
      });
    }
    for (const [address, link] of this.links) {
      if (masters.has(address)) continue;
      this.links.delete(address);
      void link.stop();
      this.refresh();
    }
  }

  private addLink(address: string, connection: Redis): TrackingLink {
    const link = new TrackingLink(
      connection,
      this.prefix,
      {
        onLive: () => this.refresh(),
        onLost: (reason) => this.lost(address, reason),
        onInvalidate: (keys) => this.invalidate(keys),
      },
      this.metrics,
      this.logger.child({ master: address }),
    );
    this.links.set(address, link);
    // A server we do not listen to yet may change keys: not trusted until its link is live.
    this.lost(address, 'new tracking connection');
    return link;
  }

  /** Activates L1 once every link is live. */
  private refresh(): void {
    if (this.closed || this.l1.isActive) return;
    const links = [...this.links.values()];
    if (links.length === 0 || !links.every((link) => link.isLive)) return;
    this.l1.activate();
    this.logger.debug({ prefix: this.prefix, servers: links.length }, 'L1 invalidation tracking active');
    this.resolveFirstSetUp(true);
  }

  private lost(address: string, reason: string): void {
    if (reason === 'tracking set-up failed') this.resolveFirstSetUp(false);
    if (!this.l1.isActive) return;
    this.metrics.l1Flushes.inc({ reason: 'tracking_lost' });
    this.logger.warn(
      { reason, server: address },
      'L1 flushed and bypassed until Redis invalidation tracking is back',
    );
    this.l1.deactivate();
  }

  private invalidate(keys: readonly string[] | null): void {
    if (keys === null) {
      this.metrics.l1Flushes.inc({ reason: 'flushall' });
      this.l1.flush();
      return;
    }
    for (const full of keys) {
      if (!full.startsWith(this.prefix)) continue;
      const key = full.slice(this.prefix.length);
      const held = this.l1.invalidate(key);
      this.metrics.l1Invalidations.inc();
      this.onInvalidated?.(key, held);
    }
  }

  async stop(): Promise<void> {
    this.closed = true;
    if (this.redis.isCluster) {
      (this.redis as Cluster)
        .off('+node', this.onTopology)
        .off('-node', this.onTopology)
        .off('refresh', this.onTopology);
    }
    this.l1.deactivate();
    await Promise.all([...this.links.values()].map((link) => link.stop()));
    this.links.clear();
  }
}
