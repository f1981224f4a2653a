import { NAMESPACE_KEY_SEGMENT, TAG_SET_SEGMENT } from '@walpurge/rules';
import { randomBytes } from 'node:crypto';
import {
  ErrorCode,
  LogThrottle,
  Registry,
  WalpurgeError,
  createLogger,
  errorMessage,
  sleep,
} from '@walpurge/core';
import { connectCacheRedis, ownKeyPrefix } from './cache-redis.js';
import { EntryStore, type LookupResult } from './entry-store.js';
import { InvalidationTracker } from './invalidation-tracker.js';
import { L1Cache, type ReadTicket } from './l1-cache.js';
import { createClientMetrics, type ClientMetrics } from './metrics.js';
import { NamespaceVersions, canonicalNamespaces, composeKey } from './namespace-versions.js';
import { NumericOptions, type CacheClientOptions, type GetOptions } from './options.js';
import { PayloadCodec, jsonSerializer } from './serializer.js';
import { SingleFlight } from './singleflight.js';
import { TagPruner } from './tag-pruner.js';
import { jitteredTtlMs, shouldRefreshEarly } from './xfetch.js';
import type { LeasedLoadOutcome } from './leased-load.js';
import { PostPurgeReads } from './post-purge-reads.js';
import { HotKeyRefresher } from './refresher.js';
import { versionOf, type VersionResult } from './row-version.js';
import { untilReady, warmEntries, type WarmEntry, type WarmOptions, type WarmReport } from './warm.js';

export type Loader<T> = () => Promise<T>;

export interface CacheClient {
  /**
   * Cache-aside read: L1 → Redis → loader, with leases so that only one caller in the whole fleet
   * loads a missing key and a fill that raced a purge is never stored.
   */
  get<T>(key: string, loader: Loader<T>, options: GetOptions<NoInfer<T>>): Promise<T>;
  /**
   * Pre-loads keys through the lease path (start-up, after a deploy): cached keys are skipped and a
   * fill that raced a purge or a write is refused, so it never overwrites a newer value. Failures are
   * collected in the report, not thrown.
   */
  warm(entries: readonly WarmEntry[], options?: WarmOptions): Promise<WarmReport>;
  /** Resolves once the in-process level is usable (immediately without L1). */
  ready(): Promise<void>;
  /** Stops background work and closes the connections the client opened itself. Idempotent. */
  close(): Promise<void>;
  readonly metrics: ClientMetrics;
  /** Redis client id of the connection receiving invalidations, while L1 tracking is live; for tests/diagnostics. */
  trackingClientId(): number | undefined;
}

type LoadReason =
  | 'miss'
  | 'refresh'
  | 'early_refresh'
  | 'wait_timeout'
  | 'fail_open'
  | 'decode_error'
  | 'warm'
  | 'refresh_on_invalidate';

export function createCacheClient(options: CacheClientOptions): CacheClient {
  const settings = NumericOptions.parse({
    keyPrefix: options.keyPrefix,
    earlyRefreshBeta: options.earlyRefreshBeta,
    ttlJitter: options.ttlJitter,
    redisTimeoutMs: options.redisTimeoutMs,
    coalesce: options.coalesce,
    leases: options.leases ?? undefined,
    l1: options.l1,
    compression: options.compression,
    tagPruning: options.tagPruning,
    refresh: options.refresh,
  });
  const ownsRedis = typeof options.redis === 'string';
  const redis =
    typeof options.redis === 'string'
      ? connectCacheRedis({ url: options.redis }, options.cluster ?? false, settings.redisTimeoutMs)
      : options.redis;
  if (ownKeyPrefix(redis)) {
    throw new WalpurgeError(
      ErrorCode.ConfigInvalid,
      'the ioredis connection or cluster given to createCacheClient has its own keyPrefix',
      {
        hint: 'pass the prefix as createCacheClient({ keyPrefix }) instead, so tag-set members and invalidation tracking use it too',
      },
    );
  }
  if (options.refresh && settings.l1 === false) {
    throw new WalpurgeError(ErrorCode.ConfigInvalid, 'createCacheClient({ refresh }) needs l1', {
      hint: "refresh-on-invalidate learns of purges through L1's invalidation tracking: pass l1: true",
    });
  }
  if (ownsRedis) redis.on('error', () => {}); // reported through fail-open metrics, not as crashes

  const logger = (options.logger ?? createLogger({ level: 'silent', pretty: false })).child({
    component: 'cache-client',
  });
  const metrics = createClientMetrics(options.registry ?? new Registry());
  const now = options.now ?? Date.now;
  const random = options.random ?? Math.random;
  const codec = new PayloadCodec<unknown>(options.serializer ?? jsonSerializer, settings.compression);
  const store = new EntryStore(redis, settings.keyPrefix, settings.redisTimeoutMs);
  const leaseTtlMs = settings.leases.ttlMs;
  const maxWaitMs = settings.leases.maxWaitMs ?? leaseTtlMs;
  const singleFlight = new SingleFlight();
  const refreshing = new Set<string>();
  const background = new Set<Promise<unknown>>();

  const l1Options = settings.l1 === false ? undefined : settings.l1 === true ? {} : settings.l1;
  const l1 = l1Options ? new L1Cache(l1Options, now) : undefined;
  const pruner =
    settings.tagPruning === false
      ? undefined
      : new TagPruner(redis, settings.keyPrefix, settings.tagPruning, metrics, logger, (work) => track(work));
  const namespaceVersions = new NamespaceVersions(
    redis,
    settings.keyPrefix,
    settings.redisTimeoutMs,
    l1,
    metrics,
  );
  const refresher = l1
    ? new HotKeyRefresher(
        settings.refresh,
        // Finding the key missing and unleased confirms a purge (or expiry): the post-purge window opens.
        (key, loader, opts) =>
          loadIfAbsent(key, loader, opts, 'refresh_on_invalidate', () => postPurge?.invalidated(key)),
        metrics,
        logger,
        now,
      )
    : undefined;
  const postPurge = l1 ? new PostPurgeReads(settings.refresh.postPurgeWindowMs, metrics) : undefined;
  const tracker = l1
    ? new InvalidationTracker(redis, settings.keyPrefix, l1, metrics, logger, (key, held) => {
        // L1 is only filled from Redis hits (a miss's own lease poisons its ticket), so a message
        // for a held key is someone else's change, not this process's own lease or fill.
        if (held) postPurge?.invalidated(key);
        refresher?.invalidated(key);
      })
    : undefined;
  const started = tracker ? tracker.start() : Promise.resolve(true);
  /** Aborted by close(): the client is closed, and waits nobody needs any more (warm's wait for the connection) end. */
  const closing = new AbortController();
  const isClosed = (): boolean => closing.signal.aborted;
  // A failure repeating on every read is logged at most every 10 s, with the count since.
  const failOpenLog = new LogThrottle(10_000, now);
  const versionErrorLog = new LogThrottle(10_000, now);

  /** One lookup's result, for the request counter and the post-purge hit ratio. */
  function countLookup(key: string, level: 'l1' | 'redis', result: 'hit' | 'stale' | 'miss'): void {
    metrics.requests.inc({ level, result });
    if (result === 'miss' && level === 'l1') return; // the Redis lookup that follows decides
    postPurge?.read(key, result !== 'miss', refresher?.isHot(key) ?? false);
  }

  function newToken(): string {
    return randomBytes(12).toString('base64url');
  }

  function track<T>(promise: Promise<T>): void {
    const settled = promise.catch(() => undefined).finally(() => background.delete(settled));
    background.add(settled);
  }

  async function callLoader<T>(loader: Loader<T>, reason: LoadReason): Promise<T> {
    metrics.loaderCalls.inc({ reason });
    const end = metrics.loaderDuration.startTimer();
    try {
      return await loader();
    } catch (error) {
      metrics.loaderErrors.inc();
      throw error;
    } finally {
      end();
    }
  }

  function failOpen<T>(loader: Loader<T>, reason: string, error?: unknown): Promise<T> {
    metrics.failOpen.inc({ reason });
    const count = failOpenLog.take();
    if (count > 0) {
      logger.warn(
        { reason, err: error, count },
        'Redis unavailable: reading through to the loader (fail open)',
      );
    }
    return callLoader(loader, 'fail_open');
  }

  /** The row version to store with a loaded value; a broken version function is logged, not thrown. */
  function loadedVersion<T>(key: string, opts: GetOptions<T>, value: T): VersionResult | undefined {
    if (!opts.version) return undefined;
    const result = versionOf(() => opts.version?.(value));
    if (result.version !== undefined || result.reason === 'none') return result;
    const count = versionErrorLog.take();
    if (count > 0) {
      logger.warn(
        { key, reason: result.reason, err: result.error, count },
        `GetOptions.version ${result.reason === 'threw' ? 'threw' : 'returned an unusable version'}: the value is cached without a version (${errorMessage(result.error)})`,
      );
    }
    return result;
  }

  /**
   * Loads with a lease held and stores the value only if the lease survived. Returns the loaded value
   * either way (the caller asked for data, and what it read is as fresh as a database read can be),
   * and whether it was stored.
   */
  async function loadAndFill<T>(
    key: string,
    token: string,
    loader: Loader<T>,
    opts: GetOptions<T>,
    reason: LoadReason,
    ticket: ReadTicket | undefined,
  ): Promise<{ value: T; stored: boolean }> {
    const startedAt = now();
    let value: T;
    try {
      value = await callLoader(loader, reason);
    } catch (error) {
      // Give the lease back so waiters load themselves now instead of sitting out the lease TTL.
      await store.releaseLease(key, token).catch(() => undefined);
      throw error;
    }
    const deltaMs = Math.max(0, now() - startedAt);
    const version = loadedVersion(key, opts, value);
    let payload: Buffer;
    try {
      payload = await codec.encode(value);
    } catch (error) {
      await store.releaseLease(key, token).catch(() => undefined);
      throw error;
    }
    const softTtlMs = jitteredTtlMs(opts.ttl * 1000, settings.ttlJitter, random);
    const physicalTtlMs = softTtlMs + Math.max(0, Math.round((opts.staleWhileRevalidate ?? 0) * 1000));
    let stored = false;
    try {
      stored = await store.fill({
        key,
        token,
        payload,
        softTtlMs,
        physicalTtlMs,
        deltaMs,
        tags: opts.tags ?? [],
        version: version?.version,
      });
      if (stored && version?.version === undefined && version?.reason) {
        metrics.fillsWithoutVersion.inc({ reason: version.reason });
      }
      if (!stored) {
        metrics.fillRejections.inc();
        logger.debug({ key }, 'fill rejected: the key was purged or re-leased while loading');
      } else {
        if (opts.tags && opts.tags.length > 0 && !isClosed()) pruner?.filled(opts.tags);
        if (ticket && l1) {
          l1.complete(ticket, {
            value,
            softExpiresAt: now() + softTtlMs,
            deltaMs,
            sizeBytes: payload.length,
          });
        }
      }
    } catch (error) {
      metrics.fillErrors.inc();
      logger.debug({ key, err: error }, 'fill failed');
      // The lease would otherwise keep other readers waiting for up to its TTL.
      track(store.releaseLease(key, token).catch(() => undefined));
      if (reason === 'warm' || reason === 'refresh_on_invalidate') throw error;
    }
    return { value, stored };
  }

  /**
   * One load through the lease path for callers with no reader waiting on the value (warm,
   * refresh-on-invalidate): loads only if this caller wins the lease on a missing or stale key.
   */
  async function loadIfAbsent(
    key: string,
    loader: Loader<unknown>,
    opts: GetOptions,
    reason: 'warm' | 'refresh_on_invalidate',
    onFoundMissing?: () => void,
  ): Promise<LeasedLoadOutcome> {
    if (redis.status !== 'ready') {
      throw new WalpurgeError(ErrorCode.Internal, `Redis is not connected (${redis.status})`);
    }
    const token = newToken();
    const ticket = l1?.begin(key);
    try {
      let result: LookupResult;
      try {
        result = await store.lookup(key, token, opts.leaseTtlMs ?? leaseTtlMs, opts.tags ?? []);
      } catch (error) {
        // As in fromRedis: the lease may have been granted with the reply lost.
        if (error instanceof Error && error.name === 'RedisTimeoutError')
          track(store.releaseLease(key, token));
        throw error;
      }
      if (result.kind === 'hit') return 'present';
      if (result.kind === 'wait' || (result.kind === 'stale' && !result.leased)) return 'leased_elsewhere';
      if (result.kind === 'leased') onFoundMissing?.();
      const { stored } = await loadAndFill(key, token, loader, opts, reason, ticket);
      return stored ? 'filled' : 'rejected';
    } finally {
      if (ticket && l1) l1.complete(ticket, undefined);
    }
  }

  function refreshInBackground(
    key: string,
    token: string,
    loader: Loader<unknown>,
    opts: GetOptions,
    reason: LoadReason,
  ): void {
    refreshing.add(key);
    track(
      loadAndFill(key, token, loader, opts, reason, undefined)
        .catch((error: unknown) =>
          logger.warn({ key, err: error }, `background refresh failed: ${errorMessage(error)}`),
        )
        .finally(() => refreshing.delete(key)),
    );
  }

  /**
   * XFetch said "refresh now": whoever wins the refresh lease in the fleet reloads; everyone else
   * carries on. `decided`: L1 already rolled the dice for this read and said so; rolling again here
   * would make the refresh probability p² instead of p.
   */
  function maybeRefreshEarly(
    key: string,
    remainingMs: number,
    deltaMs: number,
    loader: Loader<unknown>,
    opts: GetOptions,
    decided: boolean,
  ): void {
    if (refreshing.has(key) || isClosed()) return;
    const roll = () => shouldRefreshEarly({ remainingMs, deltaMs, beta: settings.earlyRefreshBeta, random });
    if (!decided && !roll()) return;
    const token = newToken();
    refreshing.add(key);
    track(
      store
        .takeRefreshLease(key, token, opts.leaseTtlMs ?? leaseTtlMs, opts.tags ?? [])
        .then((won) => {
          refreshing.delete(key);
          if (!won) return;
          metrics.earlyRefreshes.inc();
          refreshInBackground(key, token, loader, opts, 'early_refresh');
        })
        .catch(() => refreshing.delete(key)),
    );
  }

  async function decodeOrNull(key: string, payload: Buffer): Promise<{ value: unknown } | undefined> {
    try {
      return { value: await codec.decode(payload) };
    } catch (error) {
      metrics.decodeErrors.inc();
      logger.warn({ key, err: error }, 'cache entry could not be decoded; reading through to the loader');
      return undefined;
    }
  }

  /** `earlyRefresh`: L1 held the key and its XFetch roll said "refresh" (see maybeRefreshEarly). */
  async function fromRedis<T>(
    key: string,
    loader: Loader<T>,
    opts: GetOptions<T>,
    earlyRefresh: boolean,
  ): Promise<T> {
    if (redis.status !== 'ready') return failOpen(loader, 'not_connected');
    const token = newToken();
    const ticket = l1?.begin(key);
    const lease = opts.leaseTtlMs ?? leaseTtlMs;
    const tags = opts.tags ?? [];
    const deadline = now() + maxWaitMs;
    let poll = settings.leases.pollInitialMs;
    let waited = false;
    try {
      for (;;) {
        let result: LookupResult;
        try {
          result = await store.lookup(key, token, lease, tags);
        } catch (error) {
          const timedOut = error instanceof Error && error.name === 'RedisTimeoutError';
          // The script may still have run and granted this caller the lease; only the reply is
          // late. Hand it back (a no-op if it was not granted), queued behind the lookup on the same
          // connection, so other readers do not wait out the lease TTL for a fill that never comes.
          if (timedOut) track(store.releaseLease(key, token));
          return await failOpen(loader, timedOut ? 'timeout' : 'error', error);
        }
        switch (result.kind) {
          case 'hit': {
            const decoded = await decodeOrNull(key, result.payload);
            if (!decoded) return await callLoader(loader, 'decode_error');
            // A caller that waited for another's fill was already counted, as a miss: once per get().
            if (!waited) countLookup(key, 'redis', 'hit');
            if (ticket && l1) {
              l1.complete(ticket, {
                value: decoded.value,
                softExpiresAt: now() + result.remainingMs,
                deltaMs: result.deltaMs,
                sizeBytes: result.payload.length,
              });
            }
            maybeRefreshEarly(key, result.remainingMs, result.deltaMs, loader, opts, earlyRefresh);
            return decoded.value as T;
          }
          case 'stale': {
            if (result.leased) refreshInBackground(key, token, loader, opts, 'refresh');
            const decoded = await decodeOrNull(key, result.payload);
            if (!decoded) return await callLoader(loader, 'decode_error');
            if (!waited) countLookup(key, 'redis', 'stale');
            metrics.staleServed.inc();
            return decoded.value as T;
          }
          case 'leased':
            if (!waited) countLookup(key, 'redis', 'miss');
            return (await loadAndFill(key, token, loader, opts, 'miss', ticket)).value;
          case 'wait': {
            if (!waited) {
              waited = true;
              countLookup(key, 'redis', 'miss');
              metrics.leaseWaits.inc();
            }
            const left = deadline - now();
            if (left <= 0 || isClosed()) {
              metrics.leaseWaitTimeouts.inc();
              return await callLoader(loader, 'wait_timeout');
            }
            const jittered = poll * (0.5 + random() / 2);
            await sleep(Math.max(1, Math.min(jittered, left, result.leaseRemainingMs + 1)));
            poll = Math.min(settings.leases.pollMaxMs, poll * 1.5);
            break;
          }
        }
      }
    } finally {
      if (ticket && l1) l1.complete(ticket, undefined);
    }
  }

  /** Refuses options that would cache nothing or forever; remembers a key to refresh on invalidation. */
  function checkOptions(
    caller: 'get' | 'warm',
    key: string,
    loader: Loader<unknown>,
    opts: GetOptions,
  ): void {
    if (!(opts.ttl > 0) || !Number.isFinite(opts.ttl)) {
      throw new WalpurgeError(
        ErrorCode.ConfigInvalid,
        `${caller}(${JSON.stringify(key)}): ttl must be a positive number of seconds`,
      );
    }
    // Tag sets and namespace versions live there (in Redis and, for versions, in L1): an entry
    // would overwrite or shadow them.
    if (key.startsWith(TAG_SET_SEGMENT) || key.startsWith(NAMESPACE_KEY_SEGMENT)) {
      throw new WalpurgeError(
        ErrorCode.ConfigInvalid,
        `${caller}(${JSON.stringify(key)}): keys starting with '${TAG_SET_SEGMENT}' or '${NAMESPACE_KEY_SEGMENT}' are walpurge's tag sets and namespace versions`,
      );
    }
    if (opts.refresh !== 'on-invalidate') return;
    if (opts.namespaces && opts.namespaces.length > 0) {
      // A bump makes a new key instead of purging the old one: there is no purge to refresh after.
      throw new WalpurgeError(
        ErrorCode.ConfigInvalid,
        `${caller}(${JSON.stringify(key)}): refresh: 'on-invalidate' cannot be combined with namespaces`,
        {
          hint: 'a namespace bump makes the entry unreachable instead of purging it; warm the new key instead',
        },
      );
    }
    if (!refresher) {
      throw new WalpurgeError(
        ErrorCode.ConfigInvalid,
        `${caller}(${JSON.stringify(key)}): refresh: 'on-invalidate' needs the in-process level (createCacheClient({ l1 }))`,
        { hint: 'purges are learnt from the invalidation tracking that keeps L1 honest' },
      );
    }
    refresher.mark(key, loader, opts);
  }

  /**
   * The key an entry is stored under: with namespaces, composed once from their versions read
   * before the loader runs, so a fill that races a bump lands under the old versions' key, which no
   * reader composes any more.
   */
  async function physicalKey(logicalKey: string, namespaces: readonly string[]): Promise<string> {
    if (namespaces.length === 0) return logicalKey;
    const canonical = canonicalNamespaces(namespaces);
    return composeKey(logicalKey, canonical, await namespaceVersions.read(canonical));
  }

  async function get<T>(logicalKey: string, loader: Loader<T>, opts: GetOptions<NoInfer<T>>): Promise<T> {
    if (isClosed()) throw new WalpurgeError(ErrorCode.Internal, 'cache client is closed');
    checkOptions('get', logicalKey, loader, opts);
    let key = logicalKey;
    if (opts.namespaces && opts.namespaces.length > 0) {
      if (!l1?.isActive && redis.status !== 'ready') return failOpen(loader, 'not_connected');
      try {
        key = await physicalKey(logicalKey, opts.namespaces);
      } catch (error) {
        const timedOut = error instanceof Error && error.name === 'RedisTimeoutError';
        return failOpen(loader, timedOut ? 'timeout' : 'error', error);
      }
    }
    let earlyRefresh = false;
    if (l1) {
      const entry = l1.get(key);
      if (entry) {
        const remainingMs = entry.softExpiresAt - now();
        const early = shouldRefreshEarly({
          remainingMs,
          deltaMs: entry.deltaMs,
          beta: settings.earlyRefreshBeta,
          random,
        });
        if (!early) {
          countLookup(key, 'l1', 'hit');
          return entry.value as T;
        }
        earlyRefresh = true;
      }
      countLookup(key, 'l1', 'miss');
    }
    if (!settings.coalesce) return fromRedis(key, loader, opts, earlyRefresh);
    return singleFlight.run(key, () => fromRedis(key, loader, opts, earlyRefresh));
  }

  return {
    get,
    metrics,
    async warm(entries, warmOptions = {}) {
      if (isClosed()) throw new WalpurgeError(ErrorCode.Internal, 'cache client is closed');
      await untilReady(redis, warmOptions.readyTimeoutMs ?? 10_000, closing.signal);
      return warmEntries(entries, warmOptions, {
        load: async (logicalKey, loader, opts) => {
          checkOptions('warm', logicalKey, loader, opts);
          return loadIfAbsent(await physicalKey(logicalKey, opts.namespaces ?? []), loader, opts, 'warm');
        },
        metrics,
        now,
        isClosed,
        closedError: () => new WalpurgeError(ErrorCode.Internal, 'cache client closed during warm()'),
        track,
      });
    },
    async ready() {
      await started;
    },
    trackingClientId() {
      return tracker?.clientId();
    },
    async close() {
      if (isClosed()) return;
      closing.abort();
      await refresher?.close();
      await Promise.allSettled([...background]);
      await tracker?.stop();
      if (ownsRedis) await redis.quit().catch(() => redis.disconnect());
    },
  };
}
