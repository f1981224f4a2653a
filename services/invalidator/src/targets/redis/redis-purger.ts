import { SpanStatusCode, type Span, type Tracer } from '@opentelemetry/api';
import type { ChainableCommander, Cluster, Redis } from 'ioredis';
import {
  ECHO_PURGE_REPORT_SCRIPT,
  escapeGlob,
  NAMESPACE_BUMP_SCRIPT,
  newNamespaceEpoch,
  namespaceKey,
  tagSetKey,
  type PurgeTargets,
  type VersionedKey,
} from '@walpurge/rules';
import { redisTlsError, refuseRedisTlsVerdict, type RedisConnection } from '@walpurge/config';
import { activeTracer, ErrorCode, inSpan, recordSpanError, WalpurgeError } from '@walpurge/core';
import { OTHERS_PURGED, type PurgeContext, type Purger, type PurgeReport } from '../purger.js';
import { clusterMasters } from './cluster-masters.js';
import { classifyRedisError } from './redis-errors.js';
import { isWalpurgeStateKey } from './walpurge-state-keys.js';
import { PatternSweeper, type PatternSweeperOptions, type SweepObserver } from './pattern-sweeper.js';
import { chunk, groupBySlot } from './slot-groups.js';
import { purgeTagCluster, purgeTagStandalone } from './tag-purge.js';

export interface RedisPurgerOptions {
  /** `redis.keyPrefix`, prepended to every key, pattern and tag set (and glob-escaped in patterns). */
  keyPrefix: string;
  /** Keys per UNLINK. */
  batchSize: number;
  /** COUNT hint of SCAN / SSCAN. */
  scanCount: number;
  /** Spacing of pattern sweeps (see PatternSweeper); defaults: no minimum, 1 × last sweep, at most 2 s. */
  sweep?: Partial<Omit<PatternSweeperOptions, 'scanCount'>>;
  /** Receives pattern sweep figures (metrics). */
  sweepObserver?: SweepObserver;
  /** How long a pattern purge waits for a cluster client's slot map before failing retriably (5 s). */
  clusterReadyTimeoutMs?: number;
  /** The client's URL and TLS section: a TLS failure then reads as one line naming its fix. */
  connection?: RedisConnection;
}

/** Redis' answer to a set command on a key of another type: permanent until someone deletes the key. */
function isWrongType(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('WRONGTYPE');
}

/** Runs a pipeline; its replies in order, or the first command's error (ioredis reports them per command). */
async function execOrThrow(pipeline: ChainableCommander): Promise<unknown[]> {
  const results = (await pipeline.exec()) ?? [];
  const failed = results.find(([error]) => error !== null);
  if (failed?.[0]) throw failed[0];
  return results.map(([, reply]) => reply);
}

/** `kept` of ECHO_PURGE_REPORT_SCRIPT's `{ purged, kept }` reply. */
function keptOf(reply: unknown): number {
  return Array.isArray(reply) && typeof reply[1] === 'number' ? reply[1] : 0;
}

/** Defaults of the sweep window, also those of the `invalidator.redisSweep*` options. */
export const SWEEP_WINDOW_DEFAULTS = { minWindowMs: 0, windowFactor: 1, maxWindowMs: 2_000 } as const;

/**
 * Purges keys, glob patterns and tag sets, and bumps namespace versions. Never KEYS: patterns are served by a PatternSweeper
 * (one SCAN … COUNT walk of every master for all patterns pending at once); deletions use UNLINK
 * (memory is reclaimed off the main thread) in pipelined batches, grouped by hash slot on a
 * cluster so no command spans slots; tag sets are purged page by page (tag-purge.ts).
 */
export class RedisPurger implements Purger {
  readonly name = 'redis';
  readonly stage = 'redis' as const;

  private readonly sweeper: PatternSweeper;
  /** Tracing on only: a child span of the batch per kind of target (walpurge.redis.<kind>). */
  private readonly tracer: Tracer | undefined = activeTracer('@walpurge/invalidator');

  constructor(
    private readonly client: Redis | Cluster,
    private readonly options: RedisPurgerOptions,
  ) {
    this.sweeper = new PatternSweeper(
      (signal) => this.scanNodes(signal),
      // A pattern may also match walpurge's own state under the prefix (a tag set, its journal, a
      // namespace version): those are never cache entries, and deleting a tag set would make the
      // next purge of its tag purge nothing.
      (keys) => this.unlink(keys.filter((key) => !isWalpurgeStateKey(key, options.keyPrefix))),
      options.batchSize,
      { ...SWEEP_WINDOW_DEFAULTS, ...options.sweep, scanCount: options.scanCount },
      options.sweepObserver,
    );
  }

  count(targets: PurgeTargets): number {
    return (
      targets.redis.keys.length +
      targets.redis.patterns.length +
      targets.redis.tags.length +
      targets.redis.namespaces.length +
      (targets.redis.versioned?.length ?? 0)
    );
  }

  /** Failures are classified (redis-errors.ts): connection trouble retries, refusals reject for good. */
  async purge(targets: PurgeTargets, context: PurgeContext): Promise<PurgeReport> {
    try {
      return await this.purgeAll(targets, context);
    } catch (error) {
      if (context.signal.aborted) throw error;
      // Once running, a TLS failure keeps the batch retrying (dead-lettering would drop every
      // event while the cache stays stale), under its one line.
      const tls = this.options.connection && redisTlsError(error, this.options.connection, true);
      throw tls
        ? new WalpurgeError(tls.code, tls.message, { retriable: true, cause: error })
        : classifyRedisError(error);
    }
  }

  async check(): Promise<void> {
    if (this.options.connection) await refuseRedisTlsVerdict(this.client, this.options.connection);
  }

  private async purgeAll(targets: PurgeTargets, context: PurgeContext): Promise<PurgeReport> {
    const prefix = this.options.keyPrefix;
    const { keys, versioned, tags, patterns } = targets.redis;
    const echoKept = await this.traced('keys', keys.length + (versioned?.length ?? 0), async () => {
      await this.unlink(keys.map((key) => prefix + key));
      return versioned ? await this.purgeVersioned(versioned) : 0;
    });
    const { alreadyNewer: namespacesAlreadyNewer, notStrings } = await this.traced(
      'namespaces',
      targets.redis.namespaces.length,
      () => this.bumpNamespaces(targets),
    );
    const notSets = await this.traced('tags', tags.length, async (span) => {
      const refused: string[] = [];
      for (const tag of tags) {
        if (context.signal.aborted) break;
        try {
          await this.purgeTag(tag);
        } catch (error) {
          if (!isWrongType(error)) throw error;
          refused.push(tagSetKey(prefix, tag));
        }
      }
      // The others are purged; the event is refused once the rest of its purge is done (below).
      if (span && refused.length > 0) recordSpanError(span, `not a tag set: ${refused.join(', ')}`);
      else if (span && context.signal.aborted)
        span.setStatus({ code: SpanStatusCode.ERROR, message: 'aborted before every tag was purged' });
      return refused;
    });
    if (patterns.length > 0 && !context.signal.aborted) {
      const prefix = escapeGlob(this.options.keyPrefix);
      await this.traced('patterns', patterns.length, () =>
        this.sweeper.sweep(
          patterns.map((pattern) => prefix + pattern),
          context.signal,
        ),
      );
    }
    context.signal.throwIfAborted();
    if (notSets.length > 0 || notStrings.length > 0) {
      // Everything else is purged; retrying cannot turn these keys into sets (or version strings),
      // so the event is rejected (dead-lettered) instead of stalling its partition forever.
      const problems = [
        ...(notSets.length > 0
          ? [
              `tag set ${notSets.join(', ')} holds another type than a Redis set: its members cannot be purged`,
            ]
          : []),
        ...(notStrings.length > 0
          ? [
              `namespace version ${notStrings.join(', ')} holds another type than a string: it cannot be bumped`,
            ]
          : []),
      ];
      throw new WalpurgeError(ErrorCode.PurgeFailed, problems.join('; '), {
        retriable: false,
        hint: 'tag sets (<keyPrefix>tag:<tag>) and namespace versions (<keyPrefix>ns:<namespace>) are maintained by walpurge; another writer uses the same key',
        details: { [OTHERS_PURGED]: true },
      });
    }
    return { echoKept, namespacesAlreadyNewer };
  }

  /** `work` in a `walpurge.redis.<kind>` span when tracing is on and there is something to purge. */
  private traced<T>(kind: string, count: number, work: (span?: Span) => Promise<T>): Promise<T> {
    if (count === 0 || !this.tracer) return work();
    const attributes = { 'db.system.name': 'redis', 'walpurge.count': count };
    return inSpan(this.tracer, `walpurge.redis.${kind}`, { attributes }, work);
  }

  /**
   * ioredis moves to `ready` only after a successful handshake and leaves it as soon as the
   * connection closes (it then reconnects in the background), so the status is the live state.
   */
  notReadyReason(): string | undefined {
    const status = this.client.status;
    return status === 'ready' ? undefined : `cache Redis not connected (${status})`;
  }

  async close(): Promise<void> {
    this.sweeper.close();
    this.client.disconnect();
  }

  private get isCluster(): boolean {
    return this.client.isCluster;
  }

  /** UNLINK in batches; standalone: one pipeline round trip; cluster: one command per slot batch. */
  async unlink(keys: readonly string[]): Promise<void> {
    if (keys.length === 0) return;
    if (this.isCluster) {
      await Promise.all(
        groupBySlot(keys, this.options.batchSize).map((batch) => this.client.unlink(...batch)),
      );
      return;
    }
    const pipeline = (this.client as Redis).pipeline();
    for (const batch of chunk(keys, this.options.batchSize)) pipeline.unlink(...batch);
    await execOrThrow(pipeline);
  }

  /**
   * Runs a one-key script once per call: pipelined on a standalone server, all in flight at once on
   * a cluster (one key per call, so never a cross-slot script). Each call's own outcome, in order.
   */
  private async evalEach(
    script: string,
    calls: ReadonlyArray<{ key: string; args: readonly string[] }>,
  ): Promise<Array<{ error: unknown; reply: unknown }>> {
    if (this.isCluster) {
      const settled = await Promise.allSettled(
        calls.map(({ key, args }) => this.client.eval(script, 1, key, ...args)),
      );
      return settled.map((result) =>
        result.status === 'fulfilled'
          ? { error: null, reply: result.value }
          : { error: result.reason, reply: null },
      );
    }
    const pipeline = (this.client as Redis).pipeline();
    for (const { key, args } of calls) pipeline.eval(script, 1, key, ...args);
    return ((await pipeline.exec()) ?? []).map(([error, reply]) => ({ error, reply }));
  }

  /**
   * CDC echo of write-behind: each key is purged unless the cache already holds the committed
   * version or a newer one (ECHO_PURGE_REPORT_SCRIPT; any other type or value is purged). Returns
   * how many entries were kept.
   */
  private async purgeVersioned(entries: readonly VersionedKey[]): Promise<number> {
    const prefix = this.options.keyPrefix;
    const outcomes = await this.evalEach(
      ECHO_PURGE_REPORT_SCRIPT,
      entries.map(({ key, version }) => ({ key: prefix + key, args: [version] })),
    );
    const failed = outcomes.find(({ error }) => error !== null && error !== undefined);
    if (failed) throw failed.error;
    return outcomes.reduce<number>((sum, { reply }) => sum + keptOf(reply), 0);
  }

  /**
   * Gives each namespace's version key a fresh value unless it already holds this commit LSN or a
   * newer one (NAMESPACE_BUMP_SCRIPT; layout and why in @walpurge/rules namespace.ts). A namespace
   * without a version (an LSN, or UNORDERED) is a planning bug: the event is refused, never silently
   * skipped. Returns how many bumps found the version already as new or newer, and the version keys
   * of another type (the caller refuses the event once everything else is purged).
   */
  private async bumpNamespaces(
    targets: PurgeTargets,
  ): Promise<{ alreadyNewer: number; notStrings: string[] }> {
    const { namespaces, namespaceVersions } = targets.redis;
    if (namespaces.length === 0) return { alreadyNewer: 0, notStrings: [] };
    const bumps = namespaces.map((namespace) => {
      const version = namespaceVersions?.[namespace];
      if (version === undefined)
        throw new WalpurgeError(ErrorCode.PurgeFailed, `namespace ${namespace} has no version to bump to`, {
          retriable: false,
          hint: 'namespace versions are the commit LSNs of the events that bump them',
        });
      return { key: namespaceKey(this.options.keyPrefix, namespace), args: [version, newNamespaceEpoch()] };
    });
    // Each bump's own outcome: a version key of another type must not keep the others (or the
    // event's tags and patterns) from being purged.
    const outcomes = await this.evalEach(NAMESPACE_BUMP_SCRIPT, bumps);
    const notStrings: string[] = [];
    let alreadyNewer = 0;
    outcomes.forEach(({ error, reply }, i) => {
      if (error === null || error === undefined) {
        if (reply === 0) alreadyNewer += 1;
        return;
      }
      if (!isWrongType(error)) throw error;
      notStrings.push(bumps[i]?.key ?? '');
    });
    return { alreadyNewer, notStrings };
  }

  private async purgeTag(tag: string): Promise<void> {
    const setKey = tagSetKey(this.options.keyPrefix, tag);
    if (this.isCluster) await purgeTagCluster(this.client as Cluster, setKey, this.options);
    else await purgeTagStandalone(this.client as Redis, setKey, this.options);
  }

  private async scanNodes(signal: AbortSignal): Promise<Redis[]> {
    if (!this.isCluster) return [this.client as Redis];
    return clusterMasters(this.client as Cluster, signal, this.options.clusterReadyTimeoutMs ?? 5_000);
  }
}
