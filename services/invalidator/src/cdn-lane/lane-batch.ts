import { SpanKind, type Tracer } from '@opentelemetry/api';
import {
  activeTracer,
  backoffDelay,
  errorMessage,
  inSpan,
  isWalpurgeError,
  sleep,
  type BackoffOptions,
  type Logger,
} from '@walpurge/core';
import {
  cdnKinds,
  emptyTargets,
  TargetAccumulator,
  type CompiledRules,
  type PurgePlan,
  type PurgeTargets,
} from '@walpurge/rules';
import type { DeadLetterSink } from '../dead-letter/dead-letter-sink.js';
import type { InvalidatorMetrics } from '../metrics.js';
import type { Purger } from '../targets/purger.js';
import type { CdnQueueEntry } from './cdn-queue.js';
import type { CdnLaneMetrics } from './lane-metrics.js';
import { batchLinks } from '../tracing/batch-links.js';

export interface LaneBatchOptions {
  /** The provider this lane purges on (one lane per provider). */
  purger: Purger;
  rules: CompiledRules;
  deadLetters: DeadLetterSink;
  metrics: CdnLaneMetrics;
  invalidatorMetrics: InvalidatorMetrics;
  logger: Logger;
  backoff: BackoffOptions;
  /** Attempts of an error that says neither retriable nor not before it counts as permanent. */
  maxUnclassifiedAttempts: number;
}

/** A classified failure: retriable (outage, throttling) or not (the request itself is refused). */
function classify(error: unknown): 'retriable' | 'permanent' | 'unclassified' {
  if (isWalpurgeError(error)) return error.retriable ? 'retriable' : 'permanent';
  if (error instanceof Error && 'retriable' in error && typeof error.retriable === 'boolean')
    return error.retriable ? 'retriable' : 'permanent';
  return 'unclassified';
}

class PermanentFailure {
  constructor(readonly error: unknown) {}
}

/**
 * One coalesced purge of queued entries on one provider. The targets are planned again from the
 * events with the compiled rules (the queue holds events, not targets, so a dead letter is the
 * original event and a redrive goes through the same path). Retriable failures are retried with
 * backoff for as long as it takes: the queue is durable, an outage only makes the lane lag (and the
 * lag alert fire). A permanent refusal is narrowed down by bisection to the entries that cause it;
 * those are dead-lettered one by one, the others purged. `run` resolves once every entry is purged
 * or dead-lettered (the caller then acknowledges them all), and rejects only when the signal aborts.
 */
export class LaneBatch {
  /** Tracing on only: a `walpurge.cdn.batch` span per run, the provider calls its children. */
  private readonly tracer: Tracer | undefined = activeTracer('@walpurge/invalidator');

  constructor(private readonly options: LaneBatchOptions) {}

  async run(entries: readonly CdnQueueEntry[], signal: AbortSignal): Promise<void> {
    const planned = entries.map((entry) => ({ entry, plan: this.options.rules.planPurges(entry.event) }));
    if (!this.tracer) return this.purgeOrBisect(planned, signal);
    // Its own trace: the lane works from its durable queue, apart from the batches that queued the
    // entries; it links to their origins when the queue carries them (the CDN topic does).
    const { links, dropped } = batchLinks(entries.map((entry) => entry.event));
    const attributes = {
      'walpurge.cdn.provider': this.options.purger.name,
      'walpurge.event_count': entries.length,
      'walpurge.links.dropped': dropped,
    };
    return inSpan(
      this.tracer,
      'walpurge.cdn.batch',
      { kind: SpanKind.CONSUMER, root: true, links, attributes },
      () => this.purgeOrBisect(planned, signal),
    );
  }

  private async purgeOrBisect(
    planned: ReadonlyArray<{ entry: CdnQueueEntry; plan: PurgePlan }>,
    signal: AbortSignal,
  ): Promise<void> {
    const { purger, metrics } = this.options;
    const accumulator = new TargetAccumulator();
    for (const { plan } of planned) accumulator.add({ redis: emptyTargets().redis, cdn: plan.cdn });
    const targets = accumulator.toTargets();
    if (purger.count(targets) === 0) return;
    const failure = await this.purgeWithRetry(targets, signal);
    if (!failure) {
      metrics.entries.inc({ provider: purger.name, outcome: 'purged' }, planned.length);
      return;
    }
    const [only] = planned;
    if (planned.length === 1 && only) {
      await this.deadLetter(only.entry, only.plan, failure.error, signal);
      return;
    }
    this.options.logger.warn(
      { target: purger.name, entries: planned.length, err: failure.error },
      `${purger.name} refused a coalesced purge; splitting it to find the entries it refuses`,
    );
    const half = Math.ceil(planned.length / 2);
    await this.purgeOrBisect(planned.slice(0, half), signal);
    await this.purgeOrBisect(planned.slice(half), signal);
  }

  /** Resolves undefined on success, a PermanentFailure when retrying cannot help; throws on abort. */
  private async purgeWithRetry(
    targets: PurgeTargets,
    signal: AbortSignal,
  ): Promise<PermanentFailure | undefined> {
    const { purger, invalidatorMetrics, logger, backoff, maxUnclassifiedAttempts } = this.options;
    const timer = invalidatorMetrics.purgeDuration.startTimer({ target: purger.name });
    const onRetry = (error: unknown, delayMs: number): void => {
      invalidatorMetrics.purgeRetries.inc({ target: purger.name });
      logger.warn({ target: purger.name, delayMs, err: error }, `purge on ${purger.name} failed, retrying`);
    };
    let unclassified = 0;
    for (let attempt = 0; ; attempt += 1) {
      signal.throwIfAborted();
      try {
        await purger.purge(targets, { signal, onRetry });
        this.countByKind(targets, 'success');
        timer();
        return undefined;
      } catch (error) {
        this.countByKind(targets, 'failure');
        if (signal.aborted) throw error;
        const kind = classify(error);
        if (kind === 'unclassified') unclassified += 1;
        if (kind === 'permanent' || unclassified >= maxUnclassifiedAttempts) {
          logger.error(
            { target: purger.name, err: error, unclassifiedAttempts: unclassified },
            `purge on ${purger.name} failed and cannot be retried: ${errorMessage(error)}`,
          );
          return new PermanentFailure(error);
        }
        const delay = backoffDelay(attempt, backoff);
        onRetry(error, delay);
        await sleep(delay, signal);
      }
    }
  }

  private async deadLetter(
    entry: CdnQueueEntry,
    plan: PurgePlan,
    error: unknown,
    signal: AbortSignal,
  ): Promise<void> {
    const { purger, deadLetters, metrics, logger } = this.options;
    const rules = plan.rules.filter((outcome) => outcome.purged).map((outcome) => outcome.rule);
    await deadLetters.send(
      {
        event: entry.event,
        cause: 'cdn-rejected',
        error,
        target: purger.name,
        rules,
        ...(entry.record ? { record: entry.record } : {}),
      },
      signal,
    );
    metrics.entries.inc({ provider: purger.name, outcome: 'dead_lettered' });
    logger.error(
      { target: purger.name, rules, lsn: entry.event.source.lsn, err: error },
      `${purger.name} refused the CDN purge of an event for good: dead-lettered`,
    );
  }

  private countByKind(targets: PurgeTargets, outcome: 'success' | 'failure'): void {
    for (const kind of cdnKinds)
      if (targets.cdn[kind].length > 0)
        this.options.invalidatorMetrics.purges.inc(
          { target: this.options.purger.name, kind, outcome },
          targets.cdn[kind].length,
        );
  }
}
