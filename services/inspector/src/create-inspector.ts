import type pg from 'pg';
import type { Cluster, Redis } from 'ioredis';
import { InspectConfig, connectRedis, type WalpurgeConfig } from '@walpurge/config';
import { ErrorCode, WalpurgeError, type Logger, type Registry, type Service } from '@walpurge/core';
import type { ChangeEvent } from '@walpurge/protocol';
import { compileRules } from '@walpurge/rules';
import { createRowPool } from './check/row-pool.js';
import { createInspectMetrics, initInconsistentSeries } from './metrics.js';
import { Observer } from './observer.js';
import type { InspectReport } from './report/inspect-report.js';
import { KafkaSource } from './source/kafka-source.js';
import { ReportAggregator } from './report/report-aggregator.js';
import { timescaleLabel } from './report/timescale-label.js';

export interface InspectorOptions {
  config: WalpurgeConfig;
  logger: Logger;
  registry: Registry;
  /** 'kafka': its own consumer group on the change topic; 'tap': fed through `offer` (inline transport). */
  consume: 'kafka' | 'tap';
  /**
   * 'fatal' (role 'inspector'): a failed start fails the role. 'tolerated' (role 'all'): the
   * observer must never take the purges down with it, so a failed start is logged and counted
   * (walpurge_inspect_start_failures_total) and the role runs on; and its readiness never gates
   * the role's /readyz (walpurge_inspect_up shows it instead).
   */
  startFailure?: 'fatal' | 'tolerated';
  /** Tests: a fixed random source for sampling. */
  random?: () => number;
}

export type Inspector = Service & {
  /** The in-process tap: synchronous, bounded, never throws (called after the purges of a batch). */
  offer(events: readonly ChangeEvent[]): void;
  report(): InspectReport;
  isReady(): boolean;
};

/** The consistency observer as a service of role 'inspector' or 'all' (docs/consistency.md). */
export function createInspector(options: InspectorOptions): Inspector {
  const { config } = options;
  const logger = options.logger.child({ component: 'inspector' });
  if (!config.redis)
    throw new WalpurgeError(ErrorCode.ConfigInvalid, 'the consistency observer needs a redis section');
  const inspect = config.inspect ?? InspectConfig.parse({});
  const metrics = createInspectMetrics(options.registry, () => running());
  let redis: Redis | Cluster | undefined;
  let pool: pg.Pool | undefined;
  let observer: Observer | undefined;
  let source: KafkaSource | undefined;
  let started = false;
  /** From the observer's creation (a Kafka source may deliver before start resolves) to release. */
  let accepting = false;
  let notRunning: string | undefined;
  const tolerated = options.startFailure === 'tolerated';
  function running(): boolean {
    return started && (source?.isReady() ?? true);
  }
  const idle = new ReportAggregator(inspect.timescalesMs.map(timescaleLabel), 1);
  // The rules the observer checks (those with a version), their series at 0 for the alert.
  const checkedRules = compileRules(config.rules).rules.filter((rule) => rule.source.version);
  initInconsistentSeries(
    metrics,
    checkedRules.map((rule) => rule.name),
    inspect.timescalesMs.map(timescaleLabel),
  );
  const tap = (events: readonly ChangeEvent[]): void => {
    // Role 'all' purges before the observer starts (it starts last) and after a tolerated failed
    // start: those changes go unchecked, and the count says so.
    if (!accepting || !observer) {
      if (events.length > 0) metrics.dropped.inc({ reason: 'not-running' }, events.length);
      return;
    }
    try {
      observer.offer(events);
    } catch (error) {
      // Never into the purge path: an observer bug costs checks, not purges.
      metrics.errors.inc({ target: 'decode' });
      logger.warn({ err: error }, 'inspect: changes not offered');
    }
  };
  return {
    name: 'inspector',
    offer: tap,
    // Before start: the same report shape, all zero.
    report: () => ({
      ...(notRunning === undefined ? {} : { notRunning }),
      ...(observer ?? idle).report(),
    }),
    isReady: () => tolerated || running(),
    async start() {
      try {
        await startObserver();
      } catch (error) {
        if (!tolerated) throw error;
        await release();
        notRunning = `its start failed: ${error instanceof Error ? error.message : String(error)}`;
        metrics.startFailures.inc();
        logger.error(
          { err: error },
          'inspect: the consistency observer did not start; purges go on without it',
        );
      }
    },
    async stop() {
      started = false;
      await release();
    },
  };

  async function release(): Promise<void> {
    accepting = false;
    await source?.stop().catch(() => undefined);
    await observer?.stop();
    await pool?.end().catch(() => undefined);
    redis?.disconnect();
    // The observer stays: its report is still served after a stop.
    [source, pool, redis] = [undefined, undefined, undefined];
  }

  async function startObserver(): Promise<void> {
    redis = connectRedis(config.redis!, logger);
    pool = config.database ? createRowPool(config.database) : undefined;
    if (!pool) logger.warn('inspect: no database section, candidates cannot be confirmed (unverifiable)');
    observer = new Observer({
      ...base(),
      redis,
      pool,
      feed: options.consume === 'tap' ? 'after-purge' : 'stream',
    });
    accepting = true;
    if (options.consume === 'kafka') {
      if (!config.kafka)
        throw new WalpurgeError(
          ErrorCode.ConfigInvalid,
          'the observer with transport kafka needs a kafka section',
        );
      source = new KafkaSource({
        kafka: config.kafka,
        groupId: inspect.consumerGroup,
        offer: tap,
        metrics,
        logger,
      });
      await source.start();
    }
    started = true;
    logger.info(
      { sampleRate: inspect.sampleRate, timescalesMs: inspect.timescalesMs, consume: options.consume },
      'consistency observer running',
    );
  }

  function base() {
    return { config, inspect, metrics, logger, ...(options.random ? { random: options.random } : {}) };
  }
}
