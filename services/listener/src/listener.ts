import {
  columnsReadByTable,
  databaseAddress,
  databaseSslWarning,
  kafkaSslWarning,
  type DatabaseConfig,
  type WalpurgeConfig,
} from '@walpurge/config';
import {
  ErrorCode,
  WalpurgeError,
  backoffDelay,
  defaultBackoff,
  errorMessage,
  sleep,
  type Logger,
  type Registry,
  type Service,
} from '@walpurge/core';
import { formatLsn, type ChangeEvent, type ChangeSink } from '@walpurge/protocol';
import { createKafkaSink } from './kafka/kafka-sink.js';
import {
  clearStreamingGauges,
  createListenerMetrics,
  sessionMetrics,
  type ListenerMetrics,
} from './metrics.js';
import { classifyPgError } from './setup/pg-errors.js';
import { prepareDatabase, type PreparedDatabase } from './setup/prepare.js';
import { parseTableName, tablesToPublish, type TableName } from './setup/table-names.js';
import { HistoryRecorder } from './stream/history-recorder.js';
import { decodedEventBytes } from './stream/pending-bytes.js';
import { ReplicationSession } from './stream/replication-session.js';
import { SlotMonitor } from './stream/slot-monitor.js';

/** A sink with an optional lifecycle and ordering promise (the Kafka sink has all three). */
export interface ListenerSink extends ChangeSink {
  /** Overlapping publish calls become durable in call order, so the listener may pipeline them. */
  readonly preservesCallOrder?: boolean;
  /**
   * With preservesCallOrder: how many calls it takes in flight at once (default: the listener's
   * tuning, 64). A sink that batches the calls in flight into shared requests (the Kafka sink)
   * takes many more: with one call per transaction, this caps the transactions one request carries.
   */
  readonly maxCallsInFlight?: number;
  /**
   * What one event weighs against `database.maxPendingBytes` while this sink holds it (`traced`:
   * with tracing on). Default: decodedEventBytes, its JSON length without encoding it. The Kafka
   * sink weighs the record it will send (encoded once, reused when sending).
   */
  eventBytes?(event: ChangeEvent, traced: boolean): number;
  connect?(): Promise<void>;
  close?(): Promise<void>;
}

export interface ListenerOptions {
  config: WalpurgeConfig;
  logger: Logger;
  registry: Registry;
  /** Where change events go; default: Kafka (`config.kafka`). */
  sink?: ListenerSink;
  /**
   * Called once when the listener cannot go on (slot invalidated or dropped, privileges revoked).
   * Default: log it and send this process SIGTERM, so the usual graceful shutdown runs and the
   * process exits instead of looking alive while doing nothing.
   */
  onFatal?: (error: WalpurgeError) => void;
  tuning?: Partial<ListenerTuning>;
}

export interface ListenerTuning {
  /** Most events per sink call; a bigger transaction streams to the sink in chunks of this size. */
  batchSize: number;
  /**
   * Decoded events not yet acknowledged by the sink at which reading the stream pauses. The memory
   * bound proper is `database.maxPendingBytes` (whichever is reached first pauses); this one caps
   * the per-event overhead of many tiny events.
   */
  maxPendingEvents: number;
  /**
   * Sink calls in flight at once, for sinks that preserve call order and do not say how many they
   * take (ListenerSink.maxCallsInFlight); others get 1.
   */
  maxConcurrentPublishes: number;
  /** How long a stop waits for in-flight sink calls. */
  drainTimeoutMs: number;
}

export const defaultListenerTuning: ListenerTuning = {
  batchSize: 1000,
  maxPendingEvents: 20_000,
  maxConcurrentPublishes: 64,
  drainTimeoutMs: 30_000,
};

export interface Listener extends Service {
  isReady(): boolean;
  /** Why the listener is not ready (for /readyz); undefined when it is. */
  notReadyReason(): string | undefined;
  /** Last LSN confirmed to PostgreSQL (null before the first commit). */
  durableLsn(): string | null;
}

const STANDBY_BACKOFF = { initialMs: 500, maxMs: 5000, multiplier: 2, jitter: 0.3 };
/** A session streaming this long counts as healthy: its failure starts the backoff over. */
const HEALTHY_SESSION_MS = 30_000;

class WalpurgeListener implements Listener {
  readonly name = 'listener';
  private readonly log: Logger;
  private readonly metrics: ListenerMetrics;
  private readonly database: DatabaseConfig;
  private readonly tables: TableName[];
  private readonly tuning: ListenerTuning;
  private sink: ListenerSink | undefined;
  private ownsSink = false;
  private readonly stopController = new AbortController();
  private loop: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;
  private session: ReplicationSession | undefined;
  private durable: bigint | undefined;
  private everStreamed = false;
  private standbyLogged = false;
  /** What the listener is doing while it does not stream, for /readyz. */
  private notStreamingReason = 'connecting to PostgreSQL';

  constructor(private readonly options: ListenerOptions) {
    this.log = options.logger.child({ component: 'listener' });
    this.metrics = createListenerMetrics(options.registry);
    if (!options.config.database) {
      throw new WalpurgeError(
        ErrorCode.ConfigInvalid,
        'the listener needs a database section in the config',
        {
          hint: 'add database.url (usually ${DATABASE_URL}) to walpurge.yaml',
        },
      );
    }
    this.database = options.config.database;
    this.tables = tablesToPublish(options.config);
    this.tuning = { ...defaultListenerTuning, ...options.tuning };
  }

  async start(signal: AbortSignal): Promise<void> {
    signal.addEventListener('abort', () => this.stopController.abort(), { once: true });
    const sslWarning = databaseSslWarning(this.database);
    if (sslWarning) this.log.warn(sslWarning);
    this.sink = this.options.sink ?? this.createDefaultSink();
    // Configuration and permission problems fail the start with a clear error; an unreachable
    // database or a busy slot (standby) does not: the loop keeps trying in the background.
    let prepared: PreparedDatabase | undefined;
    try {
      prepared = await this.prepare();
    } catch (error) {
      const wrapped = classifyPgError(error, {
        slot: this.database.slot,
        publication: this.database.publication,
        address: databaseAddress(this.database.url),
      });
      if (!wrapped.retriable) {
        await this.closeSink();
        throw wrapped;
      }
      this.noteRetry(wrapped);
    }
    this.loop = this.runLoop(prepared);
  }

  isReady(): boolean {
    return this.notReadyReason() === undefined;
  }

  notReadyReason(): string | undefined {
    if (this.stopController.signal.aborted) return 'stopping';
    const session = this.session;
    if (session?.streaming !== true) return this.notStreamingReason;
    // Streaming on paper, but the server has gone quiet: changes may be waiting behind a dead connection.
    return session.stalledReason;
  }

  durableLsn(): string | null {
    return this.durable === undefined ? null : formatLsn(this.durable);
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.stopController.abort();
      await this.loop;
      await this.closeSink();
    })();
    return this.stopping;
  }

  private createDefaultSink(): ListenerSink {
    const kafka = this.options.config.kafka;
    if (!kafka) {
      throw new WalpurgeError(
        ErrorCode.ConfigInvalid,
        'the listener publishes to Kafka but the config has no kafka section',
        {
          hint: 'add kafka.brokers to walpurge.yaml, or run with transport: inline (walpurge run --role all)',
        },
      );
    }
    this.ownsSink = true;
    const sslWarning = kafkaSslWarning(kafka);
    if (sslWarning) this.log.warn(sslWarning);
    return createKafkaSink({ config: kafka, logger: this.options.logger, registry: this.options.registry });
  }

  private async closeSink(): Promise<void> {
    if (this.ownsSink)
      await this.sink
        ?.close?.()
        .catch((error: unknown) => this.log.warn({ err: error }, 'closing the sink failed'));
  }

  private prepare(): Promise<PreparedDatabase> {
    return prepareDatabase({
      config: this.database,
      tables: this.tables,
      ruleTables: this.options.config.rules.map((rule) => parseTableName(rule.table)),
      columnsRead: columnsReadByTable(this.options.config),
      configuredTables: (this.database.tables ?? []).length > 0,
      logger: this.log,
      slotMustExist: this.everStreamed,
    });
  }

  private async runLoop(initial: PreparedDatabase | undefined): Promise<void> {
    const stopSignal = this.stopController.signal;
    let prepared = initial;
    let attempt = 0;
    while (!stopSignal.aborted) {
      let streamedSince: number | undefined;
      let session: ReplicationSession | undefined;
      try {
        prepared ??= await this.prepare();
        const sink = this.sink as ListenerSink;
        await sink.connect?.();
        const slotLsn = prepared.slot.confirmedFlushLsn ?? 0n;
        const startLsn = this.durable !== undefined && this.durable > slotLsn ? this.durable : slotLsn;
        const slotLabels = { slot: this.database.slot, database: prepared.database };
        const metrics = sessionMetrics(this.metrics, slotLabels);
        const monitor = new SlotMonitor({
          connection: this.database,
          slot: this.database.slot,
          pollIntervalMs: Math.min(5000, Math.max(1000, this.database.statusIntervalMs)),
          heartbeatIntervalMs: this.database.heartbeatIntervalMs,
          metrics,
          logger: this.log,
        });
        const history = new HistoryRecorder({
          connection: this.database,
          table: prepared.history.table,
          slot: this.database.slot,
          systemIdentifier: prepared.history.systemIdentifier,
          recorded: prepared.history.durableLsn,
          minIntervalMs: Math.min(1000, this.database.statusIntervalMs),
          idleIntervalMs: this.database.statusIntervalMs,
          logger: this.log,
          onRecorded: () => session?.sendStatus(false),
          onError: (error) => session?.fail(error),
        });
        session = new ReplicationSession({
          connection: this.database,
          slot: this.database.slot,
          publication: this.database.publication,
          startLsn,
          prepared,
          sink,
          maxConcurrentPublishes:
            sink.preservesCallOrder === true
              ? (sink.maxCallsInFlight ?? this.tuning.maxConcurrentPublishes)
              : 1,
          batchSize: this.tuning.batchSize,
          maxPendingEvents: Math.max(this.tuning.maxPendingEvents, this.tuning.batchSize * 2),
          maxPendingBytes: this.database.maxPendingBytes,
          eventBytes: sink.eventBytes?.bind(sink) ?? decodedEventBytes,
          statusIntervalMs: this.database.statusIntervalMs,
          deadAfterIntervals: this.database.deadAfterIntervals,
          drainTimeoutMs: this.tuning.drainTimeoutMs,
          logger: this.log,
          metrics,
          onStreaming: () => {
            streamedSince = Date.now();
            this.everStreamed = true;
            this.standbyLogged = false;
            this.notStreamingReason = 'reconnecting to PostgreSQL';
            this.metrics.streaming.set(1);
            monitor.start();
          },
          onDurable: (lsn) => {
            this.durable = lsn;
          },
          history,
        });
        this.session = session;
        try {
          await session.run(stopSignal);
        } finally {
          this.session = undefined;
          this.metrics.streaming.set(0);
          await monitor.stop();
          await history.close();
          // Stopped, reconnecting or (slot taken) standby: no stale slot figures from this pod.
          clearStreamingGauges(this.metrics, slotLabels);
        }
      } catch (error) {
        prepared = undefined;
        if (stopSignal.aborted) break;
        const wrapped = classifyPgError(error, {
          slot: this.database.slot,
          publication: this.database.publication,
          address: databaseAddress(this.database.url),
          connectedBefore: this.everStreamed,
        });
        if (!wrapped.retriable) {
          this.fatal(wrapped);
          return;
        }
        // Start the backoff over only after a session that worked: one whose sink acknowledged a
        // commit, or that streamed for a good while. A session that streams and then fails at its first
        // publish (Kafka rejecting sends) must not reset it, or the listener would hot-loop.
        if (
          streamedSince !== undefined &&
          ((session?.acknowledgedCommits ?? 0) > 0 || Date.now() - streamedSince >= HEALTHY_SESSION_MS)
        )
          attempt = 0;
        const delay = backoffDelay(
          attempt,
          wrapped.code === ErrorCode.SlotBusy ? STANDBY_BACKOFF : defaultBackoff,
        );
        attempt += 1;
        this.noteRetry(wrapped, delay);
        try {
          await sleep(delay, stopSignal);
        } catch {
          break;
        }
      }
    }
  }

  private noteRetry(error: WalpurgeError, delayMs?: number): void {
    this.notStreamingReason =
      error.code === ErrorCode.SlotBusy
        ? `standing by: replication slot "${this.database.slot}" is in use by another reader`
        : `reconnecting after: ${errorMessage(error)}`;
    if (error.code === ErrorCode.SlotBusy) {
      if (!this.standbyLogged) this.log.info({ slot: this.database.slot }, `standing by: ${error.message}`);
      this.standbyLogged = true;
      return;
    }
    this.metrics.reconnects.inc({ reason: error.code });
    this.log.warn(
      { err: error, retryInMs: delayMs, hint: error.hint },
      `listener will reconnect: ${errorMessage(error)}`,
    );
  }

  private fatal(error: WalpurgeError): void {
    this.log.fatal({ err: error, code: error.code, hint: error.hint }, error.message);
    if (this.options.onFatal) {
      this.options.onFatal(error);
      return;
    }
    process.exitCode = 1;
    process.kill(process.pid, 'SIGTERM');
  }
}

/** Composition contract: PostgreSQL logical replication → protocol v1 change events → sink (Kafka by default). */
export function createListener(options: ListenerOptions): Listener {
  return new WalpurgeListener(options);
}
