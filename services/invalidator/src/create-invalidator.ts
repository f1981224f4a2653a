import pg from 'pg';
import kafkajs, { type Kafka, type Producer } from 'kafkajs';
import {
  CdnConfig,
  ConfigError,
  WRITE_BEHIND_DEFAULTS,
  databaseAddress,
  databaseSslWarning,
  kafkaSslWarning,
  formatPath,
  pgConnectionOptions,
  type ConfigProblem,
  type WalpurgeConfig,
} from '@walpurge/config';
import {
  DATABASE_TLS,
  ErrorCode,
  isRetriable,
  tlsError,
  WalpurgeError,
  type BackoffOptions,
  type Logger,
  type Registry,
  type Service,
} from '@walpurge/core';
import { encodeChangeEvent, type ChangeEvent, type ChangeHandler } from '@walpurge/protocol';
import {
  cdnSupportsPrefixes,
  cdnUrlTemplateProblems,
  compileRules,
  ruleWarnings,
  truncateProblems,
  validateRulesAgainstSchema,
  type ProblemAt,
} from '@walpurge/rules';
import { isCdnQueueError } from './cdn-lane/cdn-queue.js';
import { createCdnLanes, type CdnLanes, type CdnQueueLocation } from './cdn-lane/create-cdn-lanes.js';
import type { DeadLetter, DeadLetterSink } from './dead-letter/dead-letter-sink.js';
import { loggingDeadLetterSink } from './dead-letter/logging-dead-letter-sink.js';
import { matchedRuleNames } from './dead-letter/matched-rules.js';
import { PostgresDeadLetterSink } from './dead-letter/postgres-dead-letter-sink.js';
import { refusingTarget } from './dead-letter/refusing-target.js';
import { ChangeConsumer } from './kafka/change-consumer.js';
import { DeadLetterQueue } from './kafka/dead-letter.js';
import { KafkaDeadLetterSink, refusalHeadersOf } from './kafka/dead-letter-sink.js';
import { TopicIdReader, createKafka, ensureTopics, watchWalpurgeTopics } from '@walpurge/kafka';
import { createInvalidatorMetrics, sweepObserver } from './metrics.js';
import { Coalescer } from './pipeline/coalescer.js';
import { isolatePoison } from './pipeline/isolate-poison.js';
import { PurgeExecutor } from './pipeline/purge-executor.js';
import { createCdnMetrics } from './targets/cdn/cdn-metrics.js';
import { createPurgers } from './targets/create-purgers.js';
import type { Purger } from './targets/purger.js';

export interface InvalidatorOptions {
  config: WalpurgeConfig;
  logger: Logger;
  registry: Registry;
  /** 'kafka': also run the consumer group; 'none': only `handle` (inline transport, tests). */
  consume: 'kafka' | 'none';
  /** Locates rule problems found against the live schema (from loadConfig); default: path only. */
  problemAt?: ProblemAt;
  configFile?: string;
  /** Check rules against the database schema at start when `database` is configured (default true). */
  validateSchema?: boolean;
  /** Replaces the purgers built from config (tests, embedding). */
  purgers?: Purger[];
  /**
   * Replaces the dead-letter sink built from config (the table in inline mode, the topic with
   * Kafka), for refusals of both stages: `walpurge dlq redrive` stores what is refused again in the
   * same transaction that deletes the redriven rows.
   */
  deadLetters?: DeadLetterSink;
  /**
   * Run the CDN lanes that drain the CDN queue (default true). false: CDN work is only enqueued,
   * for a process (the CLI's inline redrive) whose queue the running daemon's lanes drain.
   */
  runCdnLane?: boolean;
}

export type Invalidator = Service & {
  handle: ChangeHandler;
  /** True while it can do its job: started, every purge target connected, the consumer (kafka) joined. */
  isReady(): boolean;
  /** Why isReady() is false; undefined when ready. */
  notReadyReason(): string | undefined;
};

const notStarted = (): never => {
  throw new WalpurgeError(ErrorCode.Internal, 'invalidator.handle called before start()');
};

export function createInvalidator(options: InvalidatorOptions): Invalidator {
  const { config } = options;
  const logger = options.logger.child({ component: 'invalidator' });
  const metrics = createInvalidatorMetrics(options.registry);
  // Whether truncates may widen CDN urls to prefix purges (see truncate-safety.ts).
  const truncateOptions = { cdnPrefixPurge: cdnSupportsPrefixes(config.cdn) };
  const rules = compileRules(config.rules, truncateOptions);
  const backoff: BackoffOptions = {
    initialMs: config.invalidator.retryInitialMs,
    maxMs: config.invalidator.retryMaxMs,
    multiplier: 2,
    jitter: 0.5,
  };
  // Aborted only when a graceful stop runs out of time: in-flight purges are then abandoned uncommitted.
  const purgeAbort = new AbortController();

  let purgers: Purger[] = [];
  let cdnLanes: CdnLanes | undefined;
  let executor: PurgeExecutor | undefined;
  let consumer: ChangeConsumer | undefined;
  let kafka: Kafka | undefined;
  let producer: Producer | undefined;
  /** The periodic re-check of the topics' durability (stopped first on shutdown). */
  let durabilityWatch: { stop(): void } | undefined;
  let deadLetterSink: DeadLetterSink | undefined = options.deadLetters;
  let tableSink: PostgresDeadLetterSink | undefined;
  let started = false;
  let stopping: Promise<void> | undefined;

  const problemAt: ProblemAt =
    options.problemAt ?? ((path, message) => ({ path: formatPath(path), message }));
  const logRuleWarning = (warning: ConfigProblem): void =>
    logger.warn({ path: warning.path, line: warning.line }, `rule check: ${warning.message}`);

  const refuse = (problems: ConfigProblem[]): never => {
    throw new ConfigError(
      ErrorCode.SchemaMismatch,
      options.configFile ?? 'walpurge.yaml',
      problems,
      'fix the rules or the table definitions, then restart',
    );
  };

  async function validateSchema(): Promise<void> {
    // Checks and warnings that need no database run even when the schema check is skipped.
    const truncate = [
      ...truncateProblems(rules.rules, problemAt, truncateOptions),
      ...cdnUrlTemplateProblems(rules.rules, problemAt),
    ];
    if (truncate.length > 0) refuse(truncate);
    ruleWarnings(rules.rules, problemAt).forEach(logRuleWarning);
    if (!config.database || options.validateSchema === false || config.rules.length === 0) return;
    const sslWarning = databaseSslWarning(config.database);
    if (sslWarning) logger.warn(sslWarning);
    const client = new pg.Client({
      ...pgConnectionOptions(config.database),
      application_name: 'walpurge-invalidator',
    });
    await client.connect().catch((error: unknown) => {
      const address = databaseAddress(config.database!.url);
      const where = { what: 'PostgreSQL', address, settings: DATABASE_TLS };
      throw tlsError(error, ErrorCode.DatabaseUnreachable, where) ?? error;
    });
    let problems: ConfigProblem[];
    const warnings: ConfigProblem[] = [];
    try {
      problems = await validateRulesAgainstSchema(config.rules, client, problemAt, warnings, {
        publication: config.database.publication,
      });
    } finally {
      await client.end();
    }
    warnings.forEach(logRuleWarning);
    if (problems.length > 0) refuse(problems);
  }

  /**
   * Inline transport: the listener acknowledges the LSN once this resolves. Retriable failures are
   * retried inside (backpressure up to the replication slot). A purge a target rejects for good
   * must not stop replication forever — the listener would fail, restart and meet the same event:
   * the event is isolated, logged in full at error level, counted, and stored in the dead-letter
   * table (resolved only once committed, so before the LSN is acknowledged); the others of the
   * batch are purged. Without a database section (tests, embedding) it is only logged and counted.
   */
  const handle: ChangeHandler = async (events: readonly ChangeEvent[], signal?: AbortSignal) => {
    const active = executor ?? notStarted();
    const combined = signal ? AbortSignal.any([signal, purgeAbort.signal]) : purgeAbort.signal;
    await isolatePoison(
      events,
      (part) => active.handle(part, combined),
      async (event, error) => {
        metrics.rejectedEvents.inc({ transport: 'inline' });
        logger.error(
          { err: error, event: encodeChangeEvent(event).toString('utf8') },
          deadLetterSink
            ? 'purge rejected for good (inline transport): event dead-lettered'
            : 'purge rejected for good and no dead-letter store (no database section): event logged and skipped',
        );
        const letter = { event, cause: 'purge-rejected', error, target: refusingTarget(error) } as const;
        await deadLetterSink?.send({ ...letter, rules: matchedRuleNames(rules, event) }, combined);
      },
      // A CDN queue that cannot take the work is not this event's fault: the batch waits.
      (error) => combined.aborted || isRetriable(error) || isCdnQueueError(error),
    );
  };

  /** Where CDN work waits for its lane: the CDN topic (kafka) or a table of the source database (inline). */
  function cdnQueueLocation(deadLetterTopic: DeadLetterQueue | undefined): CdnQueueLocation {
    const kafkaConfig = config.kafka;
    if (kafka && producer && kafkaConfig && deadLetterTopic)
      return {
        kind: 'kafka',
        kafka,
        producer,
        topic: kafkaConfig.cdnTopic,
        consumerGroup: kafkaConfig.consumerGroup,
        maxMessageBytes: kafkaConfig.maxMessageBytes,
        deadLetterTopic,
        topicIds: () => new TopicIdReader(kafkaConfig),
      };
    if (!config.database)
      throw new ConfigError(ErrorCode.ConfigInvalid, options.configFile ?? 'walpurge.yaml', [
        {
          path: 'database',
          message:
            'CDN purges are queued in a table of the source database with the inline transport (database.cdnQueueTable), but no database section is configured',
        },
      ]);
    return {
      kind: 'table',
      url: config.database.url,
      ssl: config.database.ssl,
      table: config.database.cdnQueueTable,
    };
  }

  async function start(signal: AbortSignal): Promise<void> {
    await validateSchema();
    purgers =
      options.purgers ??
      createPurgers(config, rules, logger, backoff, {
        cdnMetrics: createCdnMetrics(options.registry),
        sweepObserver: sweepObserver(metrics),
      });
    try {
      for (const purger of purgers) await purger.check?.();
    } catch (error) {
      await Promise.all(purgers.map((purger) => purger.close().catch(() => undefined)));
      throw error;
    }
    const cdnPurgers = purgers.filter((purger) => purger.stage === 'cdn');
    if (!deadLetterSink && options.consume === 'none' && config.database) {
      tableSink = new PostgresDeadLetterSink({
        url: config.database.url,
        ssl: config.database.ssl,
        table: config.database.deadLetterTable,
        metrics,
        logger,
        backoff,
      });
      await tableSink.start();
      deadLetterSink = tableSink;
    }
    logger.info(
      {
        rules: rules.rules.length,
        tables: rules.tables(),
        targets: purgers.map((p) => p.name),
        consume: options.consume,
      },
      'invalidator starting',
    );
    let deadLetterTopic: DeadLetterQueue | undefined;
    if (options.consume === 'kafka') {
      if (!config.kafka) {
        throw new ConfigError(ErrorCode.ConfigInvalid, options.configFile ?? 'walpurge.yaml', [
          { path: 'kafka', message: 'the invalidator consumes Kafka but no kafka section is configured' },
        ]);
      }
      signal.throwIfAborted();
      const kafkaWarning = kafkaSslWarning(config.kafka);
      if (kafkaWarning) logger.warn(kafkaWarning);
      kafka = createKafka(config.kafka, { logger });
      const topicOptions = { logger, registry: options.registry, verdicts: new Map<string, string>() };
      await ensureTopics(kafka, config.kafka, topicOptions);
      durabilityWatch = watchWalpurgeTopics(kafka, config.kafka, topicOptions);
      producer = kafka.producer({
        idempotent: true,
        maxInFlightRequests: 1,
        // kafkajs 2's default, named so that it does not warn about it at every start.
        createPartitioner: kafkajs.Partitioners.DefaultPartitioner,
      });
      await producer.connect();
      deadLetterTopic = new DeadLetterQueue({
        producer,
        topic: config.kafka.deadLetterTopic,
        maxMessageBytes: config.kafka.maxMessageBytes,
        metrics,
        logger,
        backoff,
        refusalHeaders: refusalHeadersOf(rules),
      });
      deadLetterSink ??= new KafkaDeadLetterSink(deadLetterTopic);
    }
    if (cdnPurgers.length > 0) {
      const transport = options.consume === 'kafka' ? 'kafka' : 'inline';
      const store = deadLetterSink ?? loggingDeadLetterSink(logger);
      cdnLanes = createCdnLanes({
        queue: cdnQueueLocation(deadLetterTopic),
        providers: cdnPurgers,
        runLanes: options.runCdnLane ?? true,
        rules,
        // Purgers given by the caller may come without a cdn section: the lane's defaults then.
        cdn: config.cdn ?? CdnConfig.parse({}),
        invalidator: config.invalidator,
        // Events a CDN refuses for good go where the Redis stage's refusals go, counted alike (the
        // WalpurgePurgesRejected alert).
        deadLetters: {
          send: async (letter: DeadLetter, sendSignal: AbortSignal) => {
            await store.send(letter, sendSignal);
            metrics.rejectedEvents.inc({ transport });
          },
        },
        registry: options.registry,
        invalidatorMetrics: metrics,
        logger,
        backoff,
      });
      await cdnLanes.start();
    }
    // The flusher's own commits keep the entries it wrote (read-your-writes). The defaults match
    // the flusher's, so an invalidator deployed without a flusher section still recognises them.
    executor = new PurgeExecutor(
      rules,
      purgers.filter((purger) => purger.stage === 'redis'),
      metrics,
      logger,
      backoff,
      Date.now,
      {
        origin: config.flusher?.replicationOrigin ?? WRITE_BEHIND_DEFAULTS.replicationOrigin,
        versionColumn: config.flusher?.versionColumn ?? WRITE_BEHIND_DEFAULTS.versionColumn,
      },
      cdnLanes?.enqueuer,
    );
    if (options.consume === 'kafka' && kafka && config.kafka && deadLetterTopic) {
      const active = executor;
      const coalescer = new Coalescer(
        (events) => active.handle(events, purgeAbort.signal),
        config.invalidator.coalesceWindowMs,
        config.invalidator.maxBatchEvents,
      );
      consumer = new ChangeConsumer({
        kafka,
        kafkaConfig: config.kafka,
        invalidatorConfig: config.invalidator,
        coalescer,
        handleEvents: (part, purgeSignal) => active.handle(part, purgeSignal),
        deadLetters: deadLetterTopic,
        metrics,
        logger,
        purgeSignal: purgeAbort.signal,
      });
      await consumer.start();
    }
    started = true;
  }

  async function stopAll(): Promise<void> {
    durabilityWatch?.stop();
    // Let the in-flight batch finish and commit; abandon it (uncommitted, so replayed) past the deadline.
    const deadline = setTimeout(() => {
      logger.warn(
        { stopTimeoutMs: config.invalidator.stopTimeoutMs },
        'in-flight purges did not finish in time; abandoning them uncommitted',
      );
      purgeAbort.abort();
    }, config.invalidator.stopTimeoutMs);
    try {
      // The lanes stop taking entries at once; what they have in flight gets the same time.
      await Promise.all([consumer?.stop(), cdnLanes?.stop(config.invalidator.stopTimeoutMs)]);
    } finally {
      clearTimeout(deadline);
      purgeAbort.abort();
      await producer
        ?.disconnect()
        .catch((error: unknown) => logger.warn({ err: error }, 'dead-letter producer disconnect failed'));
      await tableSink
        ?.close()
        .catch((error: unknown) => logger.warn({ err: error }, 'closing the dead-letter table pool failed'));
      await Promise.all(
        purgers.map((purger) =>
          purger
            .close()
            .catch((error: unknown) =>
              logger.warn({ err: error, target: purger.name }, 'closing a purge target failed'),
            ),
        ),
      );
      started = false;
    }
  }

  /**
   * Readiness is the real state, in both transports: a purge target that is down (the cache Redis)
   * means every change waits, so /readyz must say so rather than report a healthy process. A stuck
   * CDN does not: only its lane waits (walpurge_cdn_queue_oldest_age_seconds and its alert say so),
   * and taking the pod out would stop the Redis purges too.
   */
  function notReadyReason(): string | undefined {
    if (!started || purgeAbort.signal.aborted) return 'not started';
    for (const purger of purgers.filter((p) => p.stage === 'redis')) {
      const reason = purger.notReadyReason?.();
      if (reason !== undefined) return reason;
    }
    if (options.consume === 'kafka' && !(consumer?.isReady() ?? false))
      return 'consumer has not joined the group';
    return undefined;
  }

  return {
    name: 'invalidator',
    start,
    stop: () => (stopping ??= stopAll()),
    handle,
    isReady: () => notReadyReason() === undefined,
    notReadyReason,
  };
}
