import {
  backoffDelay,
  errorMessage,
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
  type PurgeTargets,
  type WriteEchoOptions,
} from '@walpurge/rules';
import type { InvalidatorMetrics } from '../metrics.js';
import type { Purger } from '../targets/purger.js';
import { markRefusedBy } from '../dead-letter/refusing-target.js';

/**
 * Events → rules → one coalesced set of targets → every purger, Redis first, then CDNs (a CDN
 * refilled from a not-yet-purged Redis would cache the stale value again). Resolves only when every
 * purger succeeded; retriable failures are retried (exponential backoff with jitter) until the
 * signal aborts. A non-retriable failure rejects, so the caller can isolate the poison event.
 */
export class PurgeExecutor {
  constructor(
    private readonly rules: CompiledRules,
    private readonly purgers: readonly Purger[],
    private readonly metrics: InvalidatorMetrics,
    private readonly logger: Logger,
    private readonly backoff: BackoffOptions,
    private readonly now: () => number = Date.now,
    /** Recognises the write-behind flusher's own commits (CDC echo); off when undefined. */
    private readonly echo?: WriteEchoOptions,
  ) {}

  plan(events: readonly ChangeEvent[]): PurgeTargets {
    const accumulator = new TargetAccumulator();
    for (const event of events) {
      this.metrics.events.inc({ op: event.op });
      const plan = this.rules.planPurges(event);
      accumulator.add(plan, this.echo ? writeEchoVersion(event, this.echo) : undefined);
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
    this.metrics.entriesPlanned.inc(accumulator.added);
    this.metrics.entriesSent.inc(accumulator.unique);
    if (accumulator.unique > 0) this.metrics.coalescingRatio.set(accumulator.added / accumulator.unique);
    return accumulator.toTargets();
  }

  async handle(events: readonly ChangeEvent[], signal: AbortSignal): Promise<void> {
    if (events.length === 0) return;
    this.metrics.batchEvents.observe(events.length);
    const targets = this.plan(events);
    for (const stage of ['redis', 'cdn'] as const) {
      const active = this.purgers.filter((purger) => purger.stage === stage && purger.count(targets) > 0);
      await Promise.all(active.map((purger) => this.purgeWithRetry(purger, targets, signal)));
    }
    const now = this.now();
    for (const event of events)
      this.metrics.endToEndLag.observe(Math.max(0, now - Date.parse(event.source.commitTs)) / 1000);
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
