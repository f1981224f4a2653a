import { DelayedError, Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import pg from 'pg';
import {
  FLUSH_JOB_NAME,
  SETTLE_SCRIPT,
  LuaScript,
  flushJobOptions,
  parsePendingWrite,
  stringArrayReply,
  tombstoneTableDdl,
  writeBehindLayout,
  describeWriteTable,
  type FlushJobData,
  type PendingWrite,
  type WriteBehindLayout,
} from '@walpurge/write-behind';
import {
  databaseAddress,
  databaseSslWarning,
  pgConnectionOptions,
  queueRedisConnection,
  redisAddress,
  redisTlsAttempt,
  type DatabaseConnection,
  type FlusherConfig,
  type WalpurgeConfig,
} from '@walpurge/config';
import {
  DATABASE_TLS,
  ErrorCode,
  QUEUE_REDIS_TLS,
  WalpurgeError,
  errorMessage,
  isRetriable,
  tlsError,
  tlsFailure,
  retry,
  settlesWithin,
  type Logger,
  type Registry,
  type Service,
} from '@walpurge/core';
import { BatchWriter } from './batch-writer.js';
import { Batcher } from './batcher.js';
import { FlushConnection } from './flush-connection.js';
import { createFlusherMetrics, type FlusherMetrics } from './metrics.js';
import { assertQueueRedisSafe } from './queue-redis-safety.js';
import { QueueRedisClients } from './queue-redis-clients.js';
import { reconcilePending } from './reconciler.js';
import { RepeatedErrorLog } from './repeated-error-log.js';
import { pruneFailedJobs, pruneTombstones } from './housekeeping.js';
import { markFailedOrRequeue, versionOfJobId } from './mark-failed.js';
import { RefusedValuePurger } from './refused-value-purger.js';

const settle = new LuaScript(SETTLE_SCRIPT);
/** Shutdown steps after the drain deadline (closing sessions, handing jobs back) get this long each. */
const CLOSE_GRACE_MS = 1_000;
/** At most this many unsettled jobs are named in the shutdown log line (the count is always there). */
const UNSETTLED_LOGGED = 50;
/** While the queue Redis stays down, a repeated connection error is summarised at most this often. */
const ERROR_SUMMARY_INTERVAL_MS = 30_000;
/** How often stop() checks whether it still has anything to wait for (see drainWorker). */
const DRAIN_CHECK_MS = 100;

/** Where a flush job's processor is, for the shutdown log when it cannot finish. */
type JobStage = 'reading' | 'writing' | 'handing back' | 'settling' | 'marking failed';
interface InFlightJob {
  jobId: string | undefined;
  table: string;
  key: string;
  stage: JobStage;
}

export interface FlusherOptions {
  config: WalpurgeConfig;
  logger: Logger;
  registry: Registry;
}

export type FlushOutcome = 'flushed' | 'requeued' | 'nothing-pending';

export function requireFlusherConfig(config: WalpurgeConfig): {
  flusher: FlusherConfig;
  database: DatabaseConnection;
} {
  if (!config.flusher) {
    throw new WalpurgeError(
      ErrorCode.ConfigInvalid,
      'the flusher role needs a `flusher` section in walpurge.yaml',
      {
        hint: 'add flusher: { queueRedisUrl: ${QUEUE_REDIS_URL} }',
      },
    );
  }
  if (!config.database) {
    throw new WalpurgeError(
      ErrorCode.ConfigInvalid,
      'the flusher role needs a `database` section in walpurge.yaml',
    );
  }
  return { flusher: config.flusher, database: config.database };
}

/**
 * The write-behind flusher: a BullMQ worker on the queue Redis that takes the latest pending value
 * of each queued row, writes rows in batches with version-guarded upserts, and clears a pending
 * entry only if no newer write replaced it meanwhile. See docs/client.md.
 */
export function createFlusher(options: FlusherOptions): Service & { isReady(): boolean } {
  return new Flusher(options);
}

class Flusher implements Service {
  readonly name = 'flusher';
  private readonly log: Logger;
  private readonly metrics: FlusherMetrics;
  private readonly flusher: FlusherConfig;
  private readonly database: DatabaseConnection;
  private readonly layout: WriteBehindLayout;
  private readonly clients: QueueRedisClients;
  private readonly inFlight = new Set<InFlightJob>();
  private redis: Redis | undefined;
  private workerRedis: Redis | undefined;
  private queue: Queue<FlushJobData> | undefined;
  private worker: Worker<FlushJobData, FlushOutcome> | undefined;
  private connection: FlushConnection | undefined;
  private batcher: Batcher | undefined;
  private purger: RefusedValuePurger | undefined;
  private timers: NodeJS.Timeout[] = [];
  private stopping: Promise<void> | undefined;
  /** Shutdown gave up on the queue Redis; the errors that follow are expected. */
  private redisAbandoned = false;

  constructor(private readonly options: FlusherOptions) {
    ({ flusher: this.flusher, database: this.database } = requireFlusherConfig(options.config));
    this.log = options.logger.child({ component: 'flusher' });
    this.metrics = createFlusherMetrics(options.registry, {
      heldSeconds: () => this.batcher?.heldSeconds() ?? 0,
    });
    this.layout = writeBehindLayout(this.flusher.keyPrefix);
    this.clients = new QueueRedisClients(queueRedisConnection(this.flusher));
  }

  async start(signal: AbortSignal): Promise<void> {
    try {
      await this.startAll(signal);
    } catch (error) {
      // A failed start must not leave connections behind (nobody will call stop() for it).
      await this.stop().catch(() => undefined);
      throw error;
    }
  }

  private async startAll(signal: AbortSignal): Promise<void> {
    const sslWarning = databaseSslWarning(this.database);
    if (sslWarning) this.log.warn(sslWarning);
    const config = this.flusher;
    this.redis = this.clients.create({ lazyConnect: true });
    this.logRepeatedErrors(this.redis, 'warn', 'queue Redis connection error');
    const queue = queueRedisConnection(config);
    // connect() rejects with "Connection is closed."; the socket error says why.
    let socketError: unknown;
    const noteError = (error: unknown): unknown => (socketError ??= error);
    this.redis.on('error', noteError);
    await this.redis
      .connect()
      .catch((error: unknown) => {
        const where = {
          what: 'the queue Redis',
          address: redisAddress(queue.url),
          settings: QUEUE_REDIS_TLS,
        };
        const attempt = redisTlsAttempt(queue);
        throw tlsError(socketError ?? error, ErrorCode.RedisUnavailable, { ...where, attempt }) ?? error;
      })
      .finally(() => this.redis?.off('error', noteError));
    if (config.allowUnsafeRedis) {
      await assertQueueRedisSafe(this.redis).catch((error: unknown) =>
        this.log.warn(
          { err: error },
          'queue Redis may lose writes; running anyway because flusher.allowUnsafeRedis is true',
        ),
      );
    } else {
      await assertQueueRedisSafe(this.redis);
    }

    if (this.options.config.redis) {
      this.purger = new RefusedValuePurger(this.options.config.redis);
      await this.purger.check();
    } else
      this.log.warn(
        'no `redis` section: values PostgreSQL refuses for good stay cached until their TTL (cannot purge them)',
      );

    this.connection = new FlushConnection({
      url: this.database.url,
      ssl: this.database.ssl,
      origin: config.markOrigin ? config.replicationOrigin : undefined,
      logger: this.log,
    });
    // A certificate problem is configuration: the start fails with it instead of retrying.
    await retry(() => this.prepareDatabase(), {
      signal,
      initialMs: config.retryInitialMs,
      maxMs: config.retryMaxMs,
      isRetriable: (error) => tlsFailure(error) === undefined && isRetriable(error),
      onRetry: (error, attempt, delayMs) =>
        this.log.warn({ err: error, attempt, delayMs }, 'database not ready for the flusher; retrying'),
    }).catch((error: unknown) => {
      const where = {
        what: 'PostgreSQL',
        address: databaseAddress(this.database.url),
        settings: DATABASE_TLS,
      };
      throw tlsError(error, ErrorCode.DatabaseUnreachable, where) ?? error;
    });

    const writer = new BatchWriter(this.connection, config.versionColumn, config.tombstoneTable);
    this.batcher = new Batcher({
      size: config.batchSize,
      delayMs: config.batchDelayMs,
      retryInitialMs: config.retryInitialMs,
      retryMaxMs: config.retryMaxMs,
      maxRetries: config.maxBatchRetries,
      logger: this.log,
      write: (entries) => writer.write(entries),
      onBatch: (result, seconds) => {
        this.metrics.batches.inc();
        this.metrics.batchRows.observe(result.rowsWritten);
        this.metrics.flushDuration.observe(seconds);
        this.metrics.rowsApplied.inc(result.rowsApplied);
        this.metrics.batchSplits.inc(result.splits);
        if (result.rowsWritten > 0)
          void this.redis?.hincrby(this.layout.stats, 'written', result.rowsWritten).catch(() => undefined);
      },
      onTransientError: (error, attempt, delayMs) => {
        this.metrics.failures.inc({ kind: 'transient' });
        this.log.warn({ err: error, attempt, delayMs }, 'writing a batch to PostgreSQL failed; retrying');
      },
    });

    this.queue = new Queue<FlushJobData>(config.queueName, {
      connection: this.redis,
      prefix: this.layout.bullPrefix,
    });
    this.workerRedis = this.clients.create();
    this.logRepeatedErrors(this.workerRedis, 'warn', 'queue Redis (worker) connection error');
    this.worker = new Worker<FlushJobData, FlushOutcome>(
      config.queueName,
      (job, token) => this.process(job, token),
      {
        connection: this.workerRedis,
        prefix: this.layout.bullPrefix,
        concurrency: config.concurrency ?? config.batchSize * 2,
        lockDuration: config.lockDurationMs,
        stalledInterval: config.lockDurationMs,
        maxStalledCount: config.maxStalledCount,
        autorun: false,
      },
    );
    // BullMQ re-emits every failed reconnect of its connections here: the first of a kind is an
    // error, its repeats during an outage are summarised (see RepeatedErrorLog).
    const workerErrors = this.repeatedErrorLog('error', 'flush worker error');
    this.workerRedis.on('ready', () => workerErrors.recovered());
    this.worker.on('error', (error) => {
      // After shutdown gave up on the queue Redis, jobs still in flight cannot record how they
      // ended; the shutdown log line already names them.
      if (this.redisAbandoned)
        this.log.debug({ err: error }, 'flush worker error after abandoning the queue');
      else workerErrors.report(error);
    });
    this.worker.on('failed', (job, error) => {
      if (!job) return;
      const final = error instanceof UnrecoverableError || job.attemptsMade >= (job.opts.attempts ?? 1);
      if (!(error instanceof UnrecoverableError)) this.metrics.failures.inc({ kind: 'unexpected' });
      if (final && !(error instanceof UnrecoverableError)) void this.recordFailed(job);
      this.log[final ? 'error' : 'warn'](
        {
          jobId: job.id,
          table: job.data.table,
          key: job.data.key,
          attemptsMade: job.attemptsMade,
          err: error,
        },
        final ? 'write-behind row failed; kept for inspection and redrive' : 'flush job failed; will retry',
      );
    });
    // Let BullMQ finish its own connection set-up (INFO, version checks) before start() resolves: a
    // stop() racing that set-up left its rejected INFO unhandled, which crashes a Node process.
    await Promise.all([this.queue.waitUntilReady(), this.worker.waitUntilReady()]);
    void this.worker.run().catch((error: unknown) => {
      if (!this.stopping) this.log.error({ err: error }, 'flush worker stopped');
    });

    this.every(config.reconcileIntervalMs, () => this.reconcile(), true);
    this.every(config.metricsIntervalMs, () => this.refreshMetrics(), true);
    this.every(
      Math.max(60_000, Math.min(config.tombstoneRetentionMs, 3_600_000)),
      () => this.pruneTombstones(),
      false,
    );
    this.every(
      Math.max(60_000, Math.min(config.failedRetentionMs, 3_600_000)),
      () => this.pruneFailedJobs(),
      false,
    );
    this.log.info(
      {
        queue: config.queueName,
        origin: this.connection.originName,
        batchSize: config.batchSize,
        batchDelayMs: config.batchDelayMs,
      },
      'flusher started',
    );
  }

  isReady(): boolean {
    return !this.stopping && this.redis?.status === 'ready' && this.worker?.isRunning() === true;
  }

  stop(): Promise<void> {
    this.stopping ??= this.stopAll();
    return this.stopping;
  }

  private async stopAll(): Promise<void> {
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    const { batcher, worker } = this;
    let orderly = true;
    if (worker) {
      // Stop taking jobs, write what is collected now, wait for the batch in flight and for its jobs
      // to be settled in the queue, but no longer than drainTimeoutMs: neither an unreachable
      // database nor an unreachable queue Redis may hold shutdown (see abandonInFlight).
      const closing = worker.close();
      batcher?.drain();
      // The database is down already: do not wait for it; hand the jobs back to the queue untouched.
      if (batcher && batcher.failingAttempts > 0) batcher.giveUp();
      if (!(await this.drainWorker(closing))) orderly = await this.abandonInFlight(closing);
    }
    await settlesWithin(batcher?.idle() ?? Promise.resolve(), CLOSE_GRACE_MS);
    await settlesWithin(this.queue?.close() ?? Promise.resolve(), CLOSE_GRACE_MS);
    await settlesWithin(this.connection?.close() ?? Promise.resolve(), CLOSE_GRACE_MS);
    if (orderly) await this.clients.close(CLOSE_GRACE_MS);
    await settlesWithin(this.purger?.close() ?? Promise.resolve(), CLOSE_GRACE_MS);
    this.log.info('flusher stopped');
  }

  /**
   * Waits for the worker to close, at most drainTimeoutMs, but no longer than there is something to
   * wait for: with no flush job in flight and the queue Redis unreachable, the close only waits for
   * the server to come back, which a stopping pod need not do (nothing is lost: no job is held).
   * True when the worker closed.
   */
  private async drainWorker(closing: Promise<void>): Promise<boolean> {
    const deadline = Date.now() + this.flusher.drainTimeoutMs;
    for (;;) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) return false;
      if (await settlesWithin(closing, Math.min(remaining, DRAIN_CHECK_MS))) return true;
      if (this.inFlight.size === 0 && !this.clients.allReady()) return false;
    }
  }

  /**
   * The drain deadline passed with flush jobs still in flight (or none, with the queue Redis
   * unreachable). First the database side: stop
   * retrying and close the session, which rolls back a transaction still running (nothing
   * half-written); its jobs are then handed back to the queue. If the queue Redis cannot take them
   * (unreachable), end its connections instead: the jobs stay active and locked in Redis, and once
   * their lock expires (lockDurationMs) a flusher's stalled-job check re-runs them. That is safe
   * because the rows they carry are still pending and every upsert is version-guarded: a row
   * already committed is written again as a no-op and then settled.
   * Returns whether the worker still closed in order.
   */
  private async abandonInFlight(closing: Promise<void>): Promise<boolean> {
    this.batcher?.giveUp();
    await settlesWithin(this.connection?.close() ?? Promise.resolve(), CLOSE_GRACE_MS);
    if (this.clients.allReady() && (await settlesWithin(closing, CLOSE_GRACE_MS))) return true;

    const unsettled = [...this.inFlight];
    const why = this.clients.allReady()
      ? 'flush jobs still not finished after the drain deadline'
      : unsettled.length === 0
        ? 'queue Redis unreachable at stop, no flush job in flight'
        : 'queue Redis unreachable at the drain deadline';
    this.redisAbandoned = true;
    this.log.warn(
      {
        unsettledCount: unsettled.length,
        unsettled: unsettled.slice(0, UNSETTLED_LOGGED),
        queueRedis: this.redis?.status,
        drainTimeoutMs: this.flusher.drainTimeoutMs,
        lockDurationMs: this.flusher.lockDurationMs,
      },
      unsettled.length > 0
        ? `${why}: ${unsettled.length} flush job(s) could not be settled; ` +
            'they stay locked in the queue and are re-run by a flusher after lockDurationMs ' +
            '(safe: their rows are still pending and writes are version-guarded)'
        : `${why}: closing the queue connections without waiting`,
    );
    await this.clients.abandon(CLOSE_GRACE_MS);
    if (!(await settlesWithin(closing, CLOSE_GRACE_MS)))
      this.log.warn('the flush worker did not finish closing; stopping without it');
    return false;
  }

  private repeatedErrorLog(level: 'error' | 'warn', message: string): RepeatedErrorLog {
    return new RepeatedErrorLog({
      logger: this.log,
      level,
      message,
      summaryIntervalMs: ERROR_SUMMARY_INTERVAL_MS,
    });
  }

  /** ioredis emits 'error' for every failed reconnect attempt: log them without flooding. */
  private logRepeatedErrors(redis: Redis, level: 'error' | 'warn', message: string): void {
    const errors = this.repeatedErrorLog(level, message);
    redis.on('error', (error) => errors.report(error));
    redis.on('ready', () => errors.recovered());
  }

  private async prepareDatabase(): Promise<void> {
    const connection = this.connection!;
    try {
      const client = await connection.get();
      for (const statement of tombstoneTableDdl(this.flusher.tombstoneTable)) await client.query(statement);
      for (const table of this.flusher.tables)
        await describeWriteTable(client, table, this.flusher.versionColumn);
    } catch (error) {
      connection.reset();
      throw error;
    }
  }

  /** One flush job: the latest pending value of one row, written in the next batch. */
  private async process(job: Job<FlushJobData>, token: string | undefined): Promise<FlushOutcome> {
    const tracked: InFlightJob = {
      jobId: job.id,
      table: job.data.table,
      key: job.data.key,
      stage: 'reading',
    };
    this.inFlight.add(tracked);
    try {
      return await this.flushRow(job, token, tracked);
    } finally {
      this.inFlight.delete(tracked);
    }
  }

  private async flushRow(
    job: Job<FlushJobData>,
    token: string | undefined,
    tracked: InFlightJob,
  ): Promise<FlushOutcome> {
    const { rowId } = job.data;
    const redis = this.redis!;
    const readAtMs = Date.now();
    const entry = parsePendingWrite(rowId, await redis.hgetall(this.layout.pending(rowId)));
    if (!entry) return 'nothing-pending'; // a duplicate run: another job already flushed it

    let outcome;
    tracked.stage = 'writing';
    try {
      outcome = await this.batcher!.submit(entry);
    } catch (error) {
      if (error instanceof WalpurgeError && error.code === ErrorCode.Aborted) {
        // Shutdown while the database is down: nothing was written; hand the job back untouched.
        tracked.stage = 'handing back';
        await job.moveToDelayed(Date.now() + this.flusher.retryInitialMs, token);
        throw new DelayedError();
      }
      throw error;
    }
    if (!outcome.ok) {
      if (outcome.waitingForParent && Date.now() - job.timestamp < this.flusher.foreignKeyRetryMs) {
        // Write-behind has no order across rows: the parent may simply not be flushed yet.
        tracked.stage = 'handing back';
        const delayMs = Math.min(
          this.flusher.retryMaxMs,
          Math.max(this.flusher.retryInitialMs, (Date.now() - job.timestamp) / 2),
        );
        this.metrics.requeued.inc({ reason: 'foreign_key' });
        this.log.info(
          { jobId: job.id, table: entry.table, key: entry.primaryKey, delayMs, reason: outcome.reason },
          'row refused by a foreign key (parent not written yet?); trying it again later',
        );
        await job.moveToDelayed(Date.now() + delayMs, token);
        throw new DelayedError();
      }
      tracked.stage = 'marking failed';
      this.metrics.failures.inc({ kind: 'permanent' });
      await this.purgeRefused(entry);
      const marked = await markFailedOrRequeue(this.markContext(), job.data, job.id ?? '', entry.version);
      if (marked === 'requeued') this.metrics.requeued.inc({ reason: 'changed' });
      throw new UnrecoverableError(
        `${entry.table} ${JSON.stringify(entry.primaryKey)} version ${entry.version}: ${outcome.reason}`,
      );
    }

    tracked.stage = 'settling'; // committed in PostgreSQL; the pending entry is still there
    this.metrics.rowsFlushed.inc();
    this.metrics.writeLatency.observe(Math.max(0, Date.now() - entry.pendingSinceMs) / 1000);
    const reply = stringArrayReply(
      await settle.run(
        redis,
        [this.layout.pending(rowId), this.layout.index],
        [entry.version, rowId, readAtMs],
      ),
      'settle',
    );
    if (reply[0] === 'requeue' && reply[1]) {
      // A newer write arrived while this one was being written: it needs its own flush.
      this.metrics.requeued.inc({ reason: 'changed' });
      await this.queue!.add(FLUSH_JOB_NAME, job.data, flushJobOptions(reply[1], this.flusher.maxAttempts));
      return 'requeued';
    }
    return 'flushed';
  }

  private markContext(): Parameters<typeof markFailedOrRequeue>[0] {
    return {
      redis: this.redis!,
      queue: this.queue!,
      layout: this.layout,
      attempts: this.flusher.maxAttempts,
    };
  }

  /** A job that failed on its last attempt with an unexpected error (not a refusal by PostgreSQL). */
  private async recordFailed(job: Job<FlushJobData>): Promise<void> {
    if (!job.id || !this.redis || !this.queue) return;
    await markFailedOrRequeue(this.markContext(), job.data, job.id, versionOfJobId(job.id)).catch(
      (error: unknown) => this.log.warn({ err: error, jobId: job.id }, 'could not mark a failed flush job'),
    );
  }

  /**
   * PostgreSQL refused the row for good: its value was cached when accepted and must not be served.
   * A cache Redis outage must not turn the refusal into a retry loop: counted and logged instead.
   */
  private async purgeRefused(entry: PendingWrite): Promise<void> {
    if (entry.cacheKeys.length === 0) return;
    if (!this.purger) {
      this.metrics.failures.inc({ kind: 'cache_purge' });
      this.log.warn(
        { table: entry.table, key: entry.primaryKey, version: entry.version, keys: entry.cacheKeys },
        'a value PostgreSQL refused stays cached until its TTL: no `redis` section to purge it from',
      );
      return;
    }
    try {
      await this.purger.purge(entry.cacheKeys, entry.version);
    } catch (error) {
      this.metrics.failures.inc({ kind: 'cache_purge' });
      this.log.error(
        {
          err: error,
          table: entry.table,
          key: entry.primaryKey,
          version: entry.version,
          keys: entry.cacheKeys,
        },
        'could not purge a value PostgreSQL refused from the cache; it is served until its TTL',
      );
    }
  }

  private async reconcile(): Promise<void> {
    if (!this.redis || !this.queue) return;
    const { requeued } = await reconcilePending({
      redis: this.redis,
      queue: this.queue,
      layout: this.layout,
      attempts: this.flusher.maxAttempts,
      minAgeMs: Math.min(5_000, this.flusher.reconcileIntervalMs),
    });
    if (requeued > 0) {
      this.metrics.requeued.inc({ reason: 'reconcile' }, requeued);
      this.log.warn(
        { requeued },
        'queued flush jobs for pending writes that had none (a writer or flusher crashed between steps)',
      );
    }
  }

  private async refreshMetrics(): Promise<void> {
    const redis = this.redis;
    const queue = this.queue;
    if (!redis || !queue) return;
    const [counts, pendingRows, oldest, stats] = await Promise.all([
      queue.getJobCounts('waiting', 'active', 'delayed', 'failed', 'prioritized'),
      redis.zcard(this.layout.index),
      redis.zrange(this.layout.index, 0, 0, 'WITHSCORES'),
      redis.hmget(this.layout.stats, 'accepted', 'written'),
    ]);
    for (const [state, count] of Object.entries(counts)) this.metrics.queueJobs.set({ state }, count);
    this.metrics.pendingRows.set(pendingRows);
    const oldestMs = oldest[1] === undefined ? undefined : Number(oldest[1]);
    this.metrics.oldestPendingAge.set(oldestMs === undefined ? 0 : Math.max(0, Date.now() - oldestMs) / 1000);
    this.metrics.queueWritesAccepted.setTotal(Number(stats[0] ?? 0));
    this.metrics.queueRowsWritten.setTotal(Number(stats[1] ?? 0));
  }

  /** On its own short session: the flush session is reserved for batch transactions. */
  private async pruneTombstones(): Promise<void> {
    const client = new pg.Client({ ...pgConnectionOptions(this.database), connectionTimeoutMillis: 5_000 });
    client.on('error', () => undefined);
    try {
      await client.connect();
      const pruned = await pruneTombstones({
        client,
        redis: this.redis!,
        layout: this.layout,
        tombstoneTable: this.flusher.tombstoneTable,
        retentionMs: this.flusher.tombstoneRetentionMs,
      });
      if (pruned > 0) this.log.debug({ pruned }, 'pruned write-behind tombstones');
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  private async pruneFailedJobs(): Promise<void> {
    if (!this.redis || !this.queue) return;
    const pruned = await pruneFailedJobs({
      redis: this.redis,
      queue: this.queue,
      layout: this.layout,
      retentionMs: this.flusher.failedRetentionMs,
    });
    if (pruned > 0) this.log.info({ pruned }, 'pruned failed flush jobs whose rows were written since');
  }

  private every(ms: number, task: () => Promise<void>, now: boolean): void {
    if (ms <= 0) return;
    let busy = false;
    const run = (): void => {
      if (busy || this.stopping) return;
      busy = true;
      task()
        .catch((error: unknown) =>
          this.log.warn({ err: error, error: errorMessage(error) }, 'periodic flusher task failed'),
        )
        .finally(() => (busy = false));
    };
    if (now) run();
    const timer = setInterval(run, ms);
    timer.unref();
    this.timers.push(timer);
  }
}
