import { SpanKind, type Tracer } from '@opentelemetry/api';
import {
  activeTracer,
  backoffDelay,
  errorMessage,
  inSpan,
  isRetriable,
  sleep,
  type BackoffOptions,
  type Logger,
} from '@walpurge/core';
import type { ChangeEvent } from '@walpurge/protocol';
import {
  cdnKinds,
  redisKinds,
  TargetAccumulator,
  writeEchoVersion,
  type CompiledRules,
  type PurgePlan,
  type PurgeTargets,
  type WriteEchoOptions,
} from '@walpurge/rules';
import type { CdnEnqueuer } from '../cdn-lane/cdn-queue.js';
import type { InvalidatorMetrics } from '../metrics.js';
import { refusedAfterOthersPurged, type Purger } from '../targets/purger.js';
import { markRefusedBy } from '../dead-letter/refusing-target.js';
import { batchLinks } from '../tracing/batch-links.js';

/**
 * Events → rules → one coalesced set of targets → the Redis purgers, then the CDN work. With a CDN
 * queue (the daemon) the CDN work is a durable enqueue of the events that have CDN targets, done
 * only after their Redis purges succeeded (a CDN refilled from a not-yet-purged Redis would cache
 * the stale value again); each provider's CDN lane purges them later at its own pace, so a
 * throttled CDN never holds Redis purges, offsets or the slot back. Without a queue (`walpurge
 * purge table`) the CDN purgers are called directly after Redis. Resolves only when all of it
 * succeeded; retriable failures are retried (exponential backoff with jitter) until the signal
 * aborts. A non-retriable failure rejects, so the caller can isolate the poison event.
 */
export class PurgeExecutor {
  /** Tracing on only: the `walpurge.batch` spans. */
  private readonly tracer: Tracer | undefined = activeTracer('@walpurge/invalidator');

  constructor(
    private readonly rules: CompiledRules,
    private readonly purgers: readonly Purger[],
    private readonly metrics: InvalidatorMetrics,
    private readonly logger: Logger,
    private readonly backoff: BackoffOptions,
    private readonly now: () => number = Date.now,
    /** Recognises the write-behind flusher's own commits (CDC echo); off when undefined. */
    private readonly echo?: WriteEchoOptions,
    /** Where CDN work goes; undefined: CDN purgers are called directly, after Redis. */
    private readonly cdnQueue?: CdnEnqueuer,
  ) {}

  plan(events: readonly ChangeEvent[]): PurgeTargets {
    return this.planEach(events).targets;
  }

  private planEach(events: readonly ChangeEvent[]): { targets: PurgeTargets; plans: PurgePlan[] } {
    const accumulator = new TargetAccumulator();
    const plans: PurgePlan[] = [];
    // Counted per batch: a labelled counter's inc per event showed in the consumer's profile.
    const byOp = { c: 0, u: 0, d: 0, t: 0 };
    for (const event of events) {
      byOp[event.op] += 1;
      const plan = this.rules.planPurges(event);
      plans.push(plan);
      accumulator.add(
        plan,
        this.echo ? writeEchoVersion(event, this.echo) : undefined,
        event.source.lsn,
        event.source.lsnIsCommit !== false,
      );
      if (plan.skipped) this.metrics.skipped.inc();
      for (const unknown of plan.unknown ?? []) {
        this.metrics.unknownValues.inc({
          rule: unknown.rule,
          reason: unknown.reason,
          fallback: unknown.fallbackUsed ? 'true' : 'false',
        });
        this.logger.warn(
          {
            rule: unknown.rule,
            path: unknown.path,
            column: unknown.column,
            reason: unknown.reason,
            fallbackUsed: unknown.fallbackUsed,
            lsn: event.source.lsn,
          },
          `template not rendered: ${unknown.detail}`,
        );
      }
    }
    for (const op of operations) if (byOp[op] > 0) this.metrics.events.inc({ op }, byOp[op]);
    this.metrics.entriesPlanned.inc(accumulator.added);
    this.metrics.entriesSent.inc(accumulator.unique);
    return { targets: accumulator.toTargets(), plans };
  }

  async handle(events: readonly ChangeEvent[], signal: AbortSignal): Promise<void> {
    if (events.length === 0) return;
    if (!this.tracer) return this.handleBatch(events, signal);
    // A batch mixes events of many transactions: it links to their listener spans (a child of one
    // only with the inline transport, whose call comes from inside that transaction's span).
    const { links, dropped } = batchLinks(events);
    return inSpan(
      this.tracer,
      'walpurge.batch',
      {
        kind: SpanKind.CONSUMER,
        links,
        attributes: { 'walpurge.event_count': events.length, 'walpurge.links.dropped': dropped },
      },
      () => this.handleBatch(events, signal),
    );
  }

  private async handleBatch(events: readonly ChangeEvent[], signal: AbortSignal): Promise<void> {
    this.metrics.batchEvents.observe(events.length);
    const { targets, plans } = this.planEach(events);
    const cdnEvents = events.filter((_, i) => hasCdnTargets(plans[i]));
    try {
      await this.purgeStage('redis', targets, signal);
    } catch (error) {
      // A single event rejected for good at Redis only after the rest of its Redis purges were done
      // (a tag key of another type) is about to be dead-lettered: its CDN purge is still owed. Any
      // other refusal may have left stale Redis entries (or a sibling target stopped half-way), and
      // a CDN must not refill from them: its CDN purge then waits for the redrive. A batch failing
      // is not enqueued: the caller splits it, which enqueues each good event.
      const redisTargets = this.purgers.filter((p) => p.stage === 'redis' && p.count(targets) > 0);
      if (
        events.length === 1 &&
        !signal.aborted &&
        this.cdnQueue &&
        cdnEvents.length > 0 &&
        redisTargets.length === 1 &&
        refusedAfterOthersPurged(error)
      )
        await this.cdnQueue.enqueue(cdnEvents, signal);
      throw error;
    }
    if (this.cdnQueue) {
      const queue = this.cdnQueue;
      if (cdnEvents.length > 0)
        await inSpan(
          this.tracer,
          'walpurge.cdn.enqueue',
          { attributes: { 'walpurge.event_count': cdnEvents.length } },
          () => queue.enqueue(cdnEvents, signal),
        );
    } else {
      await this.purgeStage('cdn', targets, signal);
    }
    const now = this.now();
    // The events of a transaction share their commit time: parsed once per run of them.
    let commitTs: string | undefined;
    let committedAt = 0;
    for (const event of events) {
      if (event.source.commitTs !== commitTs) {
        commitTs = event.source.commitTs;
        committedAt = Date.parse(commitTs);
      }
      this.metrics.endToEndLag.observe(Math.max(0, now - committedAt) / 1000);
    }
  }

  /**
   * Every purger of the stage in parallel, each on its own signal linked to the caller's: the first
   * one that fails for good stops its siblings (no retries go on in the background after the call
   * rejected), and the call settles only once all of them did.
   */
  private async purgeStage(
    stage: 'redis' | 'cdn',
    targets: PurgeTargets,
    signal: AbortSignal,
  ): Promise<void> {
    const active = this.purgers.filter((purger) => purger.stage === stage && purger.count(targets) > 0);
    if (active.length === 0) return;
    if (active.length === 1) return this.purgeWithRetry(active[0] as Purger, targets, signal);
    const siblings = new AbortController();
    const linked = AbortSignal.any([signal, siblings.signal]);
    let first: { error: unknown } | undefined;
    await Promise.allSettled(
      active.map((purger) =>
        this.purgeWithRetry(purger, targets, linked).catch((error: unknown) => {
          if (!siblings.signal.aborted) {
            first = { error };
            siblings.abort();
          }
        }),
      ),
    );
    if (first) throw first.error;
  }

  private countByKind(purger: Purger, targets: PurgeTargets, outcome: 'success' | 'failure'): void {
    if (purger.stage === 'redis') {
      for (const kind of redisKinds) {
        // Echo keys (kept or purged, see write-echo.ts) are keys the rules derived like any other.
        const count =
          targets.redis[kind].length + (kind === 'keys' ? (targets.redis.versioned?.length ?? 0) : 0);
        if (count > 0) this.metrics.purges.inc({ target: purger.name, kind, outcome }, count);
      }
    } else {
      for (const kind of cdnKinds)
        if (targets.cdn[kind].length > 0)
          this.metrics.purges.inc({ target: purger.name, kind, outcome }, targets.cdn[kind].length);
    }
  }

  private async purgeWithRetry(purger: Purger, targets: PurgeTargets, signal: AbortSignal): Promise<void> {
    const timer = this.metrics.purgeDuration.startTimer({ target: purger.name });
    const onRetry = (error: unknown, delayMs: number): void => {
      this.metrics.purgeRetries.inc({ target: purger.name });
      this.logger.warn(
        { target: purger.name, delayMs, err: error },
        `purge on ${purger.name} failed, retrying`,
      );
    };
    for (let attempt = 0; ; attempt += 1) {
      signal.throwIfAborted();
      try {
        const report = await purger.purge(targets, { signal, onRetry });
        this.countByKind(purger, targets, 'success');
        if (report?.echoKept) this.metrics.echoKept.inc({ target: purger.name }, report.echoKept);
        if (report?.namespacesAlreadyNewer)
          this.metrics.namespacesAlreadyNewer.inc({ target: purger.name }, report.namespacesAlreadyNewer);
        timer();
        return;
      } catch (error) {
        this.countByKind(purger, targets, 'failure');
        if (signal.aborted) throw error;
        if (!isRetriable(error)) {
          markRefusedBy(error, purger.name);
          this.logger.error(
            { target: purger.name, err: error },
            `purge on ${purger.name} failed and cannot be retried: ${errorMessage(error)}`,
          );
          throw error;
        }
        const delay = backoffDelay(attempt, this.backoff);
        onRetry(error, delay);
        await sleep(delay, signal);
      }
    }
  }
}

const operations = ['c', 'u', 'd', 't'] as const;

function hasCdnTargets(plan: PurgePlan | undefined): boolean {
  return plan !== undefined && cdnKinds.some((kind) => plan.cdn[kind].length > 0);
}
