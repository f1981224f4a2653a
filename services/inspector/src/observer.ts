import type { Cluster, Redis } from 'ioredis';
import type pg from 'pg';
import type { WalpurgeConfig, InspectConfig } from '@walpurge/config';
import { LogThrottle, type Logger } from '@walpurge/core';
import { qualifiedTable, type ChangeEvent } from '@walpurge/protocol';
import { compileRules, emptyTargets, planRule, type CompiledRule, type CompiledRules } from '@walpurge/rules';
import { READ_TIMEOUT_MS, withDeadline } from './check/deadline.js';
import { readEntry } from './check/entry-reader.js';
import { lateToleranceMs, SEEN_LATE_MS } from './check/lateness.js';
import { readRowVersion } from './check/row-reader.js';
import { createSampler } from './check/sampler.js';
import { BoundedScheduler } from './check/scheduler.js';
import {
  causeOf,
  changeVersionOf,
  confirm,
  entryVersionOf,
  firstLook,
  type ChangeVersion,
  type EntryLayout,
  type EntryVersion,
  type Writer,
} from './check/verdict.js';
import type { InspectMetrics } from './metrics.js';
import { ReportAggregator } from './report/report-aggregator.js';
import type { InspectReport } from './report/inspect-report.js';
import { ONCE_TIMESCALE, timescaleLabel } from './report/timescale-label.js';

/** One exact key of one sampled change, watched until its last timescale passed. */
interface Watch {
  event: ChangeEvent;
  rule: CompiledRule;
  layout: EntryLayout;
  change: ChangeVersion;
  /** As stored in Redis (keyPrefix applied). */
  key: string;
  commitMs: number;
  seenMs: number;
  /** Writer of the last entry seen under the key (an absent key has none). */
  writer: Writer | undefined;
  /** Index into POLL_BACKOFF_MS of the next poll; -1 once consistent or given up. */
  poll: number;
}

type Task = { watch: Watch; timescale: number } | { watch: Watch; timescale: 'poll' };

/** Time-to-consistency polls, after the change was seen (ms); then every second. */
const POLL_BACKOFF_MS = [5, 10, 20, 50, 100, 200, 500, 1_000];
/** Changes waiting to be planned; the tap never blocks, so beyond this they are dropped and counted. */
const INBOX_LIMIT = 10_000;

export interface ObserverOptions {
  config: WalpurgeConfig;
  inspect: InspectConfig;
  redis: Redis | Cluster;
  /** The confirm step's database; without it candidates stay unverifiable ('no-database'). */
  pool: pg.Pool | undefined;
  metrics: InspectMetrics;
  logger: Logger;
  random?: () => number;
  /**
   * `stream` (default): changes arrive from the change stream (the Kafka consumer), independent of
   * the purges: how long after its commit one arrives is the observer's own lag. `after-purge`: the
   * in-process tap of embedded mode offers each batch once its purges are done, so that delay is
   * the purge path's, and the first poll right after it times the system, not the observer.
   */
  feed?: 'stream' | 'after-purge';
}

/**
 * The consistency observer's core: samples changes, derives their exact keys with the
 * invalidator's planner, checks each key at commit + each timescale, confirms candidates against
 * PostgreSQL, and counts. Sources (the Kafka consumer, the in-process tap, `inspect --once`) only
 * feed it; it never writes to Redis or PostgreSQL.
 */
export class Observer {
  private readonly rules: CompiledRules;
  private readonly sample: () => boolean;
  private readonly scheduler: BoundedScheduler<Task>;
  private readonly aggregator: ReportAggregator;
  /** Changes come from the stream, not after their purges (see ObserverOptions.feed). */
  private readonly fromStream: boolean;
  private readonly inflight = new Set<Promise<void>>();
  /** Per rule, the writer last seen on its keys: the writer an absent key's check is counted under. */
  private readonly ruleWriter = new Map<string, Writer>();
  private readonly timescales: readonly number[];
  /** Skips, drops and failures repeat for every change: logged first, then once a minute with a count. */
  private readonly throttled = new LogThrottle(60_000);
  private inbox: ChangeEvent[] = [];
  private draining = false;
  private stopped = false;

  constructor(private readonly options: ObserverOptions) {
    const { inspect } = options;
    this.rules = compileRules(options.config.rules);
    this.fromStream = (options.feed ?? 'stream') === 'stream';
    this.sample = createSampler(inspect.sampleRate, options.random);
    this.timescales = [...inspect.timescalesMs].sort((a, b) => a - b);
    this.scheduler = new BoundedScheduler<Task>(inspect.maxPendingChecks, (task) =>
      this.track(this.runTask(task)),
    );
    this.aggregator = new ReportAggregator(
      this.timescales.map(timescaleLabel),
      inspect.maxReportedInconsistencies,
    );
  }

  report(): InspectReport {
    return this.aggregator.report();
  }

  /**
   * Synchronous, O(1), never throws: the in-process tap calls it on the purge path. The changes are
   * planned later, off that path; a full inbox drops them (counted).
   */
  offer(events: readonly ChangeEvent[]): void {
    if (this.stopped) return;
    const room = INBOX_LIMIT - this.inbox.length;
    if (events.length > room) {
      this.options.metrics.dropped.inc({ reason: 'inbox-full' }, events.length - Math.max(room, 0));
      for (let i = Math.max(room, 0); i < events.length; i += 1) this.aggregator.dropped();
      this.logDrop('inbox-full', events.length - Math.max(room, 0));
    }
    if (room > 0) for (const event of events.slice(0, room)) this.inbox.push(event);
    if (!this.draining && this.inbox.length > 0) {
      this.draining = true;
      setImmediate(() => this.drain());
    }
  }

  /** `inspect --once`: checks each sampled change's keys once, now (timescale 'once'). */
  async checkNow(events: readonly ChangeEvent[]): Promise<void> {
    const tasks: Array<Promise<void>> = [];
    for (const event of events)
      for (const watch of this.admit(event, false)) tasks.push(this.check(watch, ONCE_TIMESCALE));
    await Promise.all(tasks);
  }

  /** Forgets scheduled checks and waits for those running. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.inbox = [];
    this.scheduler.stop();
    this.options.metrics.pending.set(0);
    await Promise.allSettled([...this.inflight]);
  }

  private drain(): void {
    const events = this.inbox;
    this.inbox = [];
    this.draining = false;
    for (const event of events) {
      try {
        this.schedule(this.admit(event, true));
      } catch (error) {
        this.options.metrics.errors.inc({ target: 'decode' });
        this.options.logger.warn({ err: error, lsn: event.source.lsn }, 'inspect: change not checked');
      }
    }
  }

  /** Counts, samples and plans one change: the watches of its exact keys (none when not checkable). */
  private admit(event: ChangeEvent, live: boolean): Watch[] {
    const { metrics, config } = this.options;
    const commitMs = Date.parse(event.source.commitTs);
    const seenMs = Date.now();
    metrics.changesSeen.inc();
    this.aggregator.seen();
    if (live) metrics.lag.set(Math.max(0, (seenMs - commitMs) / 1000));
    if (!this.sample()) return [];
    metrics.changesSampled.inc();
    this.aggregator.sampled();
    // `inspect --once` reads old changes on purpose: their age is not the observer's lag; nor is
    // the delay of a change offered after its purges.
    if (live && this.fromStream) this.aggregator.arrivalLag(Math.max(0, seenMs - commitMs));
    if (event.op === 't') {
      this.unchecked('', 'truncate');
      return [];
    }
    const rules = this.rules.rulesFor(qualifiedTable(event));
    if (rules.length === 0) this.unchecked('', 'no-rule');
    const watches: Watch[] = [];
    const prefix = config.redis?.keyPrefix ?? '';
    for (const rule of rules) {
      const versionColumn = rule.source.version;
      if (!versionColumn) {
        this.unchecked(rule.name, 'rule-has-no-version');
        continue;
      }
      const targets = emptyTargets();
      const unknown: Parameters<typeof planRule>[3] = [];
      const outcome = planRule(rule, event, targets, unknown);
      if (!outcome.purged) continue;
      if (unknown.length > 0) this.unchecked(rule.name, 'unknown-value');
      if (targets.redis.patterns.length > 0) this.unchecked(rule.name, 'pattern');
      if (targets.redis.tags.length > 0) this.unchecked(rule.name, 'tag');
      if (targets.redis.namespaces.length > 0) this.unchecked(rule.name, 'namespace');
      if (targets.redis.keys.length === 0) continue;
      if (event.key === null) {
        this.unchecked(rule.name, 'no-primary-key');
        continue;
      }
      const layout: EntryLayout = {
        versionColumn,
        writeVersionCounts: config.flusher !== undefined && config.flusher.versionColumn === versionColumn,
      };
      const change = changeVersionOf(event.op, event.op === 'd' ? event.before : event.after, versionColumn);
      // Only keys of the row's current side: a key rendered from an update's old values may now
      // validly cache another row, whose version says nothing about this change.
      const oldSide = new Set(outcome.oldSideKeys);
      for (const key of targets.redis.keys) {
        if (oldSide.has(key)) {
          this.unchecked(rule.name, 'old-key');
          continue;
        }
        watches.push({
          event,
          rule,
          layout,
          change,
          key: prefix + key,
          commitMs,
          seenMs,
          writer: undefined,
          poll: 0,
        });
      }
    }
    return watches;
  }

  private schedule(watches: Watch[]): void {
    if (watches.length === 0) return;
    // Every timescale plus one poll slot per key, reserved at once: a change is checked whole or not at all.
    // Checks running now hold their slot too: a frozen Redis must not let admissions pile up.
    const needed = watches.length * (this.timescales.length + 1) + this.inflight.size;
    if (!this.scheduler.hasRoom(needed)) {
      this.options.metrics.dropped.inc({ reason: 'max-pending-checks' });
      this.aggregator.dropped();
      this.logDrop('max-pending-checks', 1);
      return;
    }
    for (const watch of watches) {
      for (const timescale of this.timescales)
        this.scheduler.tryAdd(watch.commitMs + timescale, { watch, timescale });
      this.scheduler.tryAdd(watch.seenMs + (POLL_BACKOFF_MS[0] ?? 5), { watch, timescale: 'poll' });
    }
    this.setPending();
  }

  /** Scheduled plus running checks: what inspect.maxPendingChecks bounds. */
  private setPending(): void {
    this.options.metrics.pending.set(this.scheduler.size + this.inflight.size);
  }

  private track(task: Promise<void>): void {
    // A check that throws (a bug, not a read failure: those are counted where they happen) is
    // counted and logged here; it must never become an unhandled rejection.
    const settled = task.catch((error: unknown) => {
      this.options.metrics.errors.inc({ target: 'internal' });
      if (this.throttled.take('error\u0000internal') > 0)
        this.options.logger.warn({ err: error }, 'inspect: a check failed: it is not counted');
    });
    this.inflight.add(settled);
    this.setPending();
    void settled.finally(() => {
      this.inflight.delete(settled);
      this.setPending();
    });
  }

  private async runTask(task: Task): Promise<void> {
    if (task.timescale === 'poll') await this.poll(task.watch);
    else await this.check(task.watch, timescaleLabel(task.timescale), task.timescale);
  }

  private unchecked(rule: string, reason: string): void {
    this.options.metrics.unchecked.inc({ rule, reason });
    this.aggregator.notChecked(reason);
    const count = this.throttled.take(`unchecked\u0000${rule}\u0000${reason}`);
    if (count > 0)
      this.options.logger.info(
        { rule, reason, count },
        `inspect: not checked (${reason}${rule ? `, rule ${rule}` : ''}): counted in walpurge_inspect_unchecked_total`,
      );
  }

  private logDrop(reason: string, dropped: number): void {
    if (this.throttled.take(`dropped\u0000${reason}`) > 0)
      this.options.logger.warn(
        { reason, dropped },
        `inspect: sampled changes dropped (${reason}): raise inspect.maxPendingChecks or lower inspect.sampleRate`,
      );
  }

  private failed(target: 'redis' | 'postgres', error: unknown, key: string): void {
    this.options.metrics.errors.inc({ target });
    const count = this.throttled.take(`error\u0000${target}`);
    if (count > 0)
      this.options.logger.warn(
        { err: error, key, target, count },
        `inspect: ${target === 'redis' ? 'cache' : 'database'} read failed: the check is not counted`,
      );
  }

  private async look(watch: Watch): Promise<EntryVersion | undefined> {
    try {
      const read = readEntry(this.options.redis, watch.key);
      const entry = entryVersionOf(await withDeadline(read, READ_TIMEOUT_MS, 'a Redis read'), watch.layout);
      if (entry.kind !== 'absent') {
        watch.writer = entry.writer;
        this.ruleWriter.set(watch.rule.name, entry.writer);
      }
      return entry;
    } catch (error) {
      this.failed('redis', error, watch.key);
      return undefined;
    }
  }

  /** The entry's writer; for an absent or unreadable key, the last one seen on it or its rule. */
  private writerOf(watch: Watch, entry: EntryVersion | undefined): Writer {
    if (entry && entry.kind !== 'absent') return entry.writer;
    return watch.writer ?? this.ruleWriter.get(watch.rule.name) ?? 'sdk';
  }

  /**
   * Time to consistency: cheap first looks on a backoff schedule until the key is consistent. Only
   * that first consistent look is recorded; a key still not consistent (stale, unverifiable, or
   * unreadable) at the last timescale is counted as never consistent, never recorded at the horizon.
   */
  private async poll(watch: Watch): Promise<void> {
    const entry = await this.look(watch);
    // A failed look (counted in errors) ends this key's polls: polling on through an outage would
    // multiply the reads of an observer that is already behind. Its time to consistency stays
    // unknown; its timescale checks still run and are reported.
    if (!entry) return;
    const now = Date.now();
    if (firstLook(entry, watch.change).verdict === 'consistent') {
      const writer = this.writerOf(watch, entry);
      // Seen late, the first poll was late too: the figure would be the observer's lag, not the
      // system's. Counted so the percentiles' sample is not silently smaller.
      if (this.fromStream && watch.seenMs - watch.commitMs > SEEN_LATE_MS) {
        this.options.metrics.timeToConsistencySkipped.inc({ writer });
        this.aggregator.timeToConsistencySkipped(writer);
        return;
      }
      const ms = Math.max(0, now - watch.commitMs);
      this.options.metrics.timeToConsistency.observe({ writer }, ms / 1000);
      this.aggregator.timeToConsistency(writer, ms);
      return;
    }
    if (this.stopped) return;
    watch.poll += 1;
    const delay = POLL_BACKOFF_MS[watch.poll] ?? 1_000 * (watch.poll - POLL_BACKOFF_MS.length + 2);
    const last = watch.commitMs + (this.timescales[this.timescales.length - 1] ?? 0);
    if (now >= last) return this.neverConsistent(watch, entry);
    // The last poll is at the last timescale itself: never consistent then means what the last
    // timescale's check would see, not "still stale a few seconds before it".
    const next = Math.min(now + delay, last);
    if (!this.scheduler.tryAdd(next, { watch, timescale: 'poll' }))
      this.options.metrics.dropped.inc({ reason: 'poll' });
  }

  private neverConsistent(watch: Watch, entry: EntryVersion): void {
    const writer = this.writerOf(watch, entry);
    this.options.metrics.neverConsistent.inc({ writer });
    this.aggregator.neverConsistent(writer);
    const count = this.throttled.take(`never-consistent\u0000${writer}`);
    if (count > 0)
      this.options.logger.info(
        { key: watch.key, rule: watch.rule.name, lsn: watch.event.source.lsn, writer, count },
        'inspect: key not consistent by the last timescale: counted in walpurge_inspect_never_consistent_total, not in the time to consistency',
      );
  }

  /**
   * The verdict at one timescale, confirmed against PostgreSQL before it counts as inconsistent.
   * `timescaleMs`: the check due at commit + timescaleMs (none for `inspect --once`, checked now).
   */
  private async check(watch: Watch, timescale: string, timescaleMs?: number): Promise<void> {
    // Measured as the check starts, before any read: what it sees is the cache at that moment.
    const late =
      timescaleMs !== undefined && Date.now() - (watch.commitMs + timescaleMs) > lateToleranceMs(timescaleMs);
    const entry = await this.look(watch);
    const writer = this.writerOf(watch, entry);
    const count = (verdict: 'consistent' | 'inconsistent' | 'unverifiable', reason?: string): void => {
      // Consistent at commit + T + lateness says nothing about T: a purge may have landed since.
      // Stale more than T after the commit, though, fails T's standard too: that verdict stands.
      if (late && verdict === 'consistent') return count('unverifiable', 'checked-late');
      this.options.metrics.checks.inc({ rule: watch.rule.name, timescale, writer, verdict });
      this.aggregator.check(timescale, writer, verdict, verdict === 'consistent' && entry?.kind === 'absent');
      if (reason) this.unchecked(watch.rule.name, reason);
    };
    // A check that could not be made is shown beside the verdicts (unverifiable, with its reason),
    // never left out of them: a stale entry behind a failed read must not vanish from the report.
    if (!entry) return count('unverifiable', 'entry-read-failed');
    const first = firstLook(entry, watch.change);
    if (first.verdict !== 'candidate')
      return count(first.verdict, 'reason' in first ? first.reason : undefined);
    const { pool } = this.options;
    if (!pool || entry.kind !== 'versioned') return count('unverifiable', 'no-database');
    const { source } = watch.event;
    // Without a primary key (a table read with REPLICA IDENTITY FULL and no key) there is no row to
    // re-read: never confirmed, never counted as consistent either.
    const key = watch.event.key ?? {};
    if (Object.keys(key).length === 0) return count('unverifiable', 'row-has-no-key');
    let row;
    try {
      // The pool's query_timeout bounds the query; the deadline bounds waiting for a connection too.
      const read = readRowVersion(pool, source, key, watch.layout.versionColumn);
      row = await withDeadline(read, READ_TIMEOUT_MS * 2, 'a PostgreSQL read');
    } catch (error) {
      this.failed('postgres', error, watch.key);
      return count('unverifiable', 'row-read-failed');
    }
    const again = await this.look(watch);
    if (!again) return count('unverifiable', 'entry-read-failed');
    const confirmed = confirm(watch.change, row, again);
    if (confirmed.verdict !== 'inconsistent')
      return count(confirmed.verdict, 'reason' in confirmed ? confirmed.reason : undefined);
    count('inconsistent');
    // The confirming read is what was judged: the entry may have been rewritten (still stale) since.
    const judged = again.kind === 'versioned' ? again : entry;
    const record = {
      at: new Date().toISOString(),
      key: watch.key,
      rule: watch.rule.name,
      lsn: source.lsn,
      commitTs: source.commitTs,
      timescale,
      writer,
      entryVersion: judged.version,
      rowVersion: row.gone ? null : row.version,
      cause: causeOf(judged.writer, judged.filledAt, watch.commitMs),
    };
    this.aggregator.inconsistency(record);
    this.options.logger.warn(record, `inspect: confirmed inconsistency at ${timescale}: ${record.cause}`);
  }
}
