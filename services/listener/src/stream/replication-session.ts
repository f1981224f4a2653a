import { setMaxListeners } from 'node:events';
import { LogicalReplicationService } from 'pg-logical-replication';
import {
  ErrorCode,
  WalpurgeError,
  errorMessage,
  activeTracer,
  isWalpurgeError,
  settlesWithin,
  type Logger,
} from '@walpurge/core';
import { formatLsn, parseLsn, type ChangeEvent, type ChangeSink } from '@walpurge/protocol';
import { ChangeAssembler } from '../decode/change-assembler.js';
import type { RelationMessage } from '../decode/pgoutput-messages.js';
import { WalpurgePgoutputPlugin, type DecodedMessage } from '../decode/pgoutput-plugin.js';
import { REPLICATION_SESSION_OPTIONS, TypeConverters } from '../decode/value-converters.js';
import type { SessionMetrics } from '../metrics.js';
import type { PreparedDatabase } from '../setup/prepare.js';
import { RelationCatalog } from '../setup/relation-catalog.js';
import { AckPipeline } from './ack-pipeline.js';
import { chunkByteLimit } from './pending-bytes.js';
import { assertSupportedLibrary, replicationSocket, type ReplicationSocket } from './replication-socket.js';
import { SilenceWatchdog } from './silence-watchdog.js';
import { pgConnectionOptions, type DatabaseConnection } from '@walpurge/config';
import { TransactionTracing } from './transaction-tracing.js';

export interface SessionOptions {
  connection: DatabaseConnection;
  slot: string;
  publication: string;
  /** Last durable LSN: streaming resumes here (PostgreSQL uses the later of it and the slot's). */
  startLsn: bigint;
  prepared: PreparedDatabase;
  sink: ChangeSink;
  maxConcurrentPublishes: number;
  batchSize: number;
  maxPendingEvents: number;
  /** Bytes of pending events (as `eventBytes` weighs them) at which reading pauses (resumes below half). */
  maxPendingBytes: number;
  /** What one event weighs against maxPendingBytes (`traced`: tracing adds a header); see ListenerSink. */
  eventBytes(event: ChangeEvent, traced: boolean): number;
  statusIntervalMs: number;
  /** Silent status intervals after which the connection counts as dead (see SilenceWatchdog). */
  deadAfterIntervals: number;
  /** How long a stop waits for in-flight sink calls before abandoning them (they replay later). */
  drainTimeoutMs: number;
  logger: Logger;
  metrics: SessionMetrics;
  onStreaming(): void;
  onDurable(lsn: bigint): void;
  /**
   * The slot history's durable LSN: no position past it is reported to the slot, so a slot found
   * past it later was not moved by walpurge. Raised as the session makes progress.
   */
  history: AckCeiling;
}

export interface AckCeiling {
  readonly ceiling: bigint;
  raise(lsn: bigint, commit: boolean): void;
  /** Records the last raise now (end of a session). */
  flush(): Promise<void>;
}

/** TCP keepalive probes start after this much idleness on the replication connection. */
const KEEPALIVE_INITIAL_DELAY_MS = 10_000;

/**
 * One replication connection, from START_REPLICATION to its end. Always built fresh: the library's
 * service object remembers the last *received* LSN and would resume from there, skipping changes the
 * sink never acknowledged. The slot's confirmed LSN is reported only by us, only with positions whose
 * events the sink acknowledged (the library's auto-ack and its timer are off).
 */
export class ReplicationSession {
  private durable: bigint;
  private chunk: ChangeEvent[] = [];
  private chunkBytes = 0;
  /** Whether we paused the socket (see updateFlow). */
  private paused = false;
  /** Pending events or bytes reached their bound and have not yet fallen below half of it. */
  private backPressured = false;
  private streamingNow = false;
  private ending: Promise<void> | undefined;
  private service: LogicalReplicationService | undefined;
  private pipeline!: AckPipeline;
  private assembler!: ChangeAssembler;
  private catalog!: RelationCatalog;
  /** Decoded messages not handled yet: they wait while a relation message's catalog lookup runs. */
  private readonly queue: DecodedMessage[] = [];
  private lookingUp = false;
  private readonly sinkAbort = new AbortController();
  private readonly timers: NodeJS.Timeout[] = [];
  private statusSoon: NodeJS.Timeout | undefined;
  private lastSentLsn = -1n;
  private readonly eventCounts = new Map<string, number>();
  private receivedBytes = 0;
  private commits = 0;
  /** Commit time of the transaction being read (pgoutput sends it in the begin message). */
  private commitTimeMs: number | undefined;
  private resolveRun!: () => void;
  private rejectRun!: (error: unknown) => void;
  private readonly log: Logger;
  private readonly watchdog: SilenceWatchdog;
  /** Tracing on only: the transaction spans (see TransactionTracing). */
  private readonly transactions: TransactionTracing | undefined;

  constructor(private readonly options: SessionOptions) {
    this.durable = options.startLsn;
    this.log = options.logger;
    const tracer = activeTracer('@walpurge/listener');
    this.transactions = tracer && new TransactionTracing(tracer, options.prepared.database);
    this.watchdog = new SilenceWatchdog({
      statusIntervalMs: Math.max(100, options.statusIntervalMs),
      intervals: options.deadAfterIntervals,
      walSenderTimeoutMs: options.prepared.walSenderTimeoutMs,
      onDead: (silentMs) => this.onSilence(silentMs),
    });
    // Sinks may listen to this signal (the Kafka sink once, others once per call in flight).
    setMaxListeners(0, this.sinkAbort.signal);
  }

  /** Transactions whose events the sink acknowledged in this session. */
  get acknowledgedCommits(): number {
    return this.commits;
  }

  get durableLsn(): bigint {
    return this.durable;
  }

  get streaming(): boolean {
    return this.streamingNow && this.ending === undefined;
  }

  /** Why a streaming session is not to be trusted right now (for /readyz), if it is not. */
  get stalledReason(): string | undefined {
    if (!this.streaming || !this.watchdog.late()) return undefined;
    const silent = (this.watchdog.silenceMs() / 1000).toFixed(1);
    return `no message from PostgreSQL for ${silent}s on the replication connection (dead connection? reconnecting after ${this.watchdog.deadAfterMs / 1000}s of silence)`;
  }

  /** Resolves when stopped through `signal`, rejects when the connection or the sink fails. */
  run(signal: AbortSignal): Promise<void> {
    const { options } = this;
    const done = new Promise<void>((resolve, reject) => {
      this.resolveRun = resolve;
      this.rejectRun = reject;
    });
    this.assembler = new ChangeAssembler({
      database: options.prepared.database,
      types: new TypeConverters(options.prepared.types),
      primaryKeys: options.prepared.primaryKeys,
    });
    this.catalog = new RelationCatalog(options.connection, options.publication);
    this.pipeline = new AckPipeline({
      sink: options.sink,
      maxConcurrent: options.maxConcurrentPublishes,
      signal: this.sinkAbort.signal,
      onDurable: (lsn, commitTimeMs) => this.advance(lsn, commitTimeMs),
      // Whatever the sink's reason, the cure is the same: replay from the durable LSN after a backoff.
      onFailure: (error) =>
        this.end(
          new WalpurgeError(
            isWalpurgeError(error) ? error.code : ErrorCode.Internal,
            `sink failed: ${errorMessage(error)}`,
            {
              retriable: true,
              cause: error,
            },
          ),
        ),
      onProgress: () => this.updateFlow(),
    });

    const service = new LogicalReplicationService(
      {
        ...pgConnectionOptions(options.connection),
        application_name: 'walpurge-listener',
        options: REPLICATION_SESSION_OPTIONS,
        // Lets the kernel notice a dead peer while we send nothing; the watchdog covers the rest.
        keepAlive: true,
        keepAliveInitialDelayMillis: KEEPALIVE_INITIAL_DELAY_MS,
      },
      { acknowledge: { auto: false, timeoutSeconds: 0 }, flowControl: { enabled: false } },
    );
    this.service = service;
    try {
      assertSupportedLibrary(service);
    } catch (error) {
      this.end(error);
      return done;
    }
    service.on('data', (_lsn: string, decoded: DecodedMessage) => this.onData(decoded));
    service.on('heartbeat', (walEnd: string, _timestamp: number, shouldRespond: boolean) =>
      this.onKeepalive(walEnd, shouldRespond),
    );
    service.on('error', (error: Error) => this.end(error));
    service.on('start', () => {
      try {
        replicationSocket(service);
      } catch (error) {
        this.end(error);
        return;
      }
      this.streamingNow = true;
      this.watchdog.streamingStarted();
      this.log.info({ slot: options.slot, from: formatLsn(this.durable) }, 'streaming changes');
      this.sendStatus(true);
      options.onStreaming();
    });
    const statusEvery = Math.max(100, options.statusIntervalMs);
    this.timers.push(setInterval(() => this.sendStatus(true), statusEvery));
    this.timers.push(setInterval(() => this.flushMetrics(), 1000));
    this.watchdog.start();

    const onAbort = (): void => this.end(undefined);
    if (signal.aborted) this.end(undefined);
    else signal.addEventListener('abort', onAbort, { once: true });
    void done.finally(() => signal.removeEventListener('abort', onAbort)).catch(() => {});

    service
      .subscribe(
        new WalpurgePgoutputPlugin(options.publication) as never,
        options.slot,
        formatLsn(this.durable),
      )
      .then(
        () =>
          this.end(
            new WalpurgeError(ErrorCode.Replication, 'PostgreSQL ended the replication stream', {
              retriable: true,
            }),
          ),
        (error: unknown) => this.end(error),
      );
    return done;
  }

  private onData(decoded: DecodedMessage): void {
    if (this.ending) return;
    this.watchdog.heard();
    this.receivedBytes += decoded.bytes;
    this.queue.push(decoded);
    this.drainQueue();
  }

  /** Handles queued messages in order, stopping at a relation message until its lookup answers. */
  private drainQueue(): void {
    while (!this.lookingUp && !this.ending) {
      const decoded = this.queue.shift();
      if (decoded === undefined) return;
      if (decoded.message?.tag === 'relation') this.lookUp(decoded);
      else this.handle(decoded);
    }
  }

  /**
   * Asks the catalog what the relation message does not say (partition root, primary key), then
   * applies it. The socket pauses meanwhile so that the queue stays short.
   */
  private lookUp(decoded: DecodedMessage): void {
    const oid = (decoded.message as { relationOid: number }).relationOid;
    this.lookingUp = true;
    this.updateFlow();
    this.catalog.describe(oid).then(
      (facts) => {
        this.lookingUp = false;
        if (facts.unresolved) this.noteUnresolved(decoded.message as RelationMessage);
        this.assembler.learnRelation(oid, facts);
        this.handle(decoded);
        this.drainQueue();
        this.updateFlow();
      },
      (error: unknown) => {
        this.lookingUp = false;
        this.end(
          new WalpurgeError(
            ErrorCode.Replication,
            `could not look up relation ${oid}: ${errorMessage(error)}`,
            {
              retriable: true,
              cause: error,
            },
          ),
        );
      },
    );
  }

  /** Said, not silent: the changes of such a relation reach no rule written for its former root. */
  private noteUnresolved(message: RelationMessage): void {
    const table = `${message.schema}.${message.table}`;
    this.options.metrics.unresolvedRelations.inc({ table });
    this.log.warn(
      {
        table,
        hint: 'flush the caches derived from the partitioned table it belonged to (DETACH and DROP PARTITION purge nothing either)',
      },
      `relation ${table} is streamed but is neither a partition nor in publication "${this.options.publication}" any more: its changes are reported under its own name`,
    );
  }

  private handle(decoded: DecodedMessage): void {
    if (decoded.message === undefined) {
      this.end(decoded.error ?? new Error('undecodable pgoutput message'));
      return;
    }
    let output;
    try {
      output = this.assembler.apply(decoded.message);
    } catch (error) {
      this.end(error);
      return;
    }
    if (!output) return;
    switch (output.type) {
      case 'begin':
        this.chunk = [];
        this.chunkBytes = 0;
        this.commitTimeMs = output.commitTimeMs;
        this.transactions?.begin(output.xid, output.lsn, output.commitTimeMs);
        break;
      case 'events':
        this.transactions?.changed(output.events);
        for (const event of output.events) {
          this.chunk.push(event);
          this.chunkBytes += this.options.eventBytes(event, this.transactions !== undefined);
          const label = `${event.source.schema}.${event.source.table}\u0000${event.op}`;
          this.eventCounts.set(label, (this.eventCounts.get(label) ?? 0) + 1);
          if (
            this.chunk.length >= this.options.batchSize ||
            this.chunkBytes >= chunkByteLimit(this.options.maxPendingBytes)
          ) {
            // A big transaction streams to the sink in chunks; its commit is acknowledged after the last.
            // Each chunk carries the commit time, so lag in seconds shows while a huge one is in flight.
            this.pipeline.push(
              this.chunk,
              undefined,
              this.commitTimeMs,
              this.chunkBytes,
              this.transactions?.chunk(false),
            );
            this.chunk = [];
            this.chunkBytes = 0;
          }
        }
        break;
      case 'commit':
        this.pipeline.push(
          this.chunk,
          output.endLsn,
          output.commitTimeMs,
          this.chunkBytes,
          this.transactions?.chunk(true),
        );
        this.chunk = [];
        this.chunkBytes = 0;
        break;
    }
    this.updateFlow();
  }

  /**
   * The one place that decides whether the socket is read. Two independent reasons pause it: a
   * relation lookup in flight (messages behind it would only queue, unbounded), and back-pressure
   * (pending events or bytes at their bound, released below half of both). Reading resumes only when
   * neither holds. The watchdog is suspended while we are the ones not reading: the server's messages
   * then wait in the socket, and silence says nothing about the connection.
   */
  private updateFlow(): void {
    if (this.ending) return;
    const events = this.pipeline.pendingEvents + this.chunk.length;
    const bytes = this.pendingBytes;
    if (
      !this.backPressured &&
      (events >= this.options.maxPendingEvents || bytes >= this.options.maxPendingBytes)
    ) {
      this.backPressured = true;
      this.options.metrics.pauses.inc();
      // The gauges are refreshed once a second; a burst can fill and drain the budget in between,
      // and the moment reading pauses is the one an operator must see.
      if (this.streamingNow) {
        this.options.metrics.pendingBytes.set(bytes);
        this.options.metrics.pendingEvents.set(events);
      }
    } else if (
      this.backPressured &&
      events <= this.options.maxPendingEvents / 2 &&
      bytes <= this.options.maxPendingBytes / 2
    ) {
      this.backPressured = false;
    }
    const wantPaused = this.backPressured || this.lookingUp;
    if (wantPaused === this.paused) return;
    const stream = this.socket();
    if (!stream) return;
    if (wantPaused) {
      stream.pause();
      this.watchdog.suspend();
    } else {
      stream.resume();
      this.watchdog.resume();
    }
    this.paused = wantPaused;
  }

  private socket(): ReplicationSocket | undefined {
    try {
      return this.service && replicationSocket(this.service);
    } catch {
      return undefined; // not connected yet, or already closed
    }
  }

  /**
   * The server answered none of our status updates for the whole deadline: the connection is dead
   * (or as good as). Destroy it rather than close it politely (a close would wait on the dead peer);
   * the listener reconnects with a fresh session from the last durable LSN, never from what this
   * one received.
   */
  private onSilence(silentMs: number): void {
    if (this.ending) return;
    const seconds = Math.round(silentMs / 100) / 10;
    this.log.warn(
      { silentMs, statusIntervalMs: this.options.statusIntervalMs, durableLsn: formatLsn(this.durable) },
      `no message from PostgreSQL for ${seconds}s on the replication connection: dropping it as dead and reconnecting from the durable LSN`,
    );
    this.options.metrics.silentConnections.inc();
    this.socket()?.destroy();
    this.end(
      new WalpurgeError(
        ErrorCode.Replication,
        `no message from PostgreSQL for ${seconds}s (data or keepalive, though every status update asks for one): the replication connection looks dead`,
        {
          retriable: true,
          hint: 'a failover or network partition leaves such half-open connections; if the server is just slow to answer, raise database.deadAfterIntervals',
        },
      ),
    );
  }

  /** Decoded events not yet acknowledged, in encoded bytes: in the sink's hands or in the open chunk. */
  private get pendingBytes(): number {
    return this.pipeline.pendingBytes + this.chunkBytes;
  }

  /**
   * A keepalive carries the server's WAL position, everything before which has been sent to us.
   * Outside a transaction, once every earlier chunk is acknowledged, that position is durable too:
   * this is what lets the slot follow an idle database or one whose writes are all unpublished.
   */
  private onKeepalive(walEndText: string, shouldRespond: boolean): void {
    if (this.ending) return;
    this.watchdog.heard();
    let walEnd: bigint;
    try {
      walEnd = parseLsn(walEndText);
    } catch {
      return;
    }
    if (
      !this.assembler.inTransaction &&
      this.chunk.length === 0 &&
      this.queue.length === 0 &&
      !this.lookingUp
    )
      this.pipeline.push([], walEnd);
    if (shouldRespond) this.sendStatus(true);
  }

  private advance(lsn: bigint, commitTimeMs: number | undefined): void {
    if (commitTimeMs !== undefined) {
      this.options.metrics.commitToAck.observe(Math.max(0, Date.now() - commitTimeMs) / 1000);
      this.options.metrics.transactions.inc();
      this.commits += 1;
    }
    if (lsn <= this.durable) return;
    this.durable = lsn;
    this.options.onDurable(lsn);
    this.options.history.raise(lsn, commitTimeMs !== undefined);
    // Report soon, coalescing bursts of small commits into one status update.
    this.statusSoon ??= setTimeout(() => {
      this.statusSoon = undefined;
      this.sendStatus(false);
    }, 50);
  }

  /**
   * Standby status update with the durable LSN (capped by the recorded history) as write/flush/apply
   * position. The library adds 1 to whatever we pass (it reports "last byte + 1"), but a commit's end
   * LSN can be exactly where the next commit record starts, and PostgreSQL skips transactions whose
   * commit starts before the confirmed position: pass position − 1 so that the server receives
   * exactly the position.
   */
  sendStatus(force: boolean): void {
    const service = this.service;
    const ceiling = this.options.history.ceiling;
    const position = this.durable < ceiling ? this.durable : ceiling;
    if (!service || !this.streamingNow || position <= 0n) return;
    if (!force && position === this.lastSentLsn) return;
    if (this.socket()?.destroyed !== false) return;
    try {
      // Forced updates (the periodic one, answers to the server's pings) ask for a reply: the server's
      // keepalive in return is what tells the watchdog the connection is alive on an idle database.
      void service.acknowledge(formatLsn(position - 1n), force);
      this.lastSentLsn = position;
      this.options.metrics.durableLsn.set(Number(position));
    } catch (error) {
      this.log.warn({ err: error }, 'could not send standby status update');
    }
  }

  private flushMetrics(): void {
    const { metrics } = this.options;
    for (const [label, count] of this.eventCounts) {
      const [table, op] = label.split('\u0000') as [string, string];
      metrics.events.inc({ table, op }, count);
    }
    this.eventCounts.clear();
    if (this.receivedBytes > 0) metrics.receivedBytes.inc(this.receivedBytes);
    this.receivedBytes = 0;
    // A session that never streamed (a standby's attempt on a busy slot) has no lag to report:
    // setting 0 here would put a figure on a pod that does not read the slot.
    if (!this.streamingNow) return;
    const oldest =
      this.pipeline.oldestPendingCommitTimeMs() ?? (this.chunk.length > 0 ? this.commitTimeMs : undefined);
    const pendingLagSeconds = oldest === undefined ? 0 : Math.max(0, Date.now() - oldest) / 1000;
    // While the server is silent we cannot know what waits behind the connection: at least the
    // silence itself, never a reassuring 0.
    const silenceSeconds = this.watchdog.late() ? this.watchdog.silenceMs() / 1000 : 0;
    metrics.lagSeconds.set(Math.max(pendingLagSeconds, silenceSeconds));
    metrics.pendingEvents.set(this.pipeline.pendingEvents + this.chunk.length);
    metrics.pendingBytes.set(this.pendingBytes);
  }

  /** Ends the session with `error` (retriable or not, as classified by the listener). */
  fail(error: unknown): void {
    this.end(error);
  }

  /** Idempotent. Drains in-flight sink calls, reports the durable LSN one last time, disconnects. */
  private end(error: unknown): void {
    if (this.ending) return;
    this.ending = this.shutdown(error);
  }

  private async shutdown(error: unknown): Promise<void> {
    const service = this.service;
    if (error !== undefined)
      this.log.warn({ err: error }, `replication session failed: ${errorMessage(error)}`);
    this.watchdog.stop();
    this.socket()?.pause();
    void this.catalog.close();
    const drained = await settlesWithin(this.pipeline.drained(), this.options.drainTimeoutMs);
    if (!drained) {
      this.log.warn(
        { timeoutMs: this.options.drainTimeoutMs },
        'sink calls still in flight at stop; their changes will be replayed',
      );
      this.sinkAbort.abort();
    }
    if (this.statusSoon) clearTimeout(this.statusSoon);
    // Record what is durable before the last report, so the successor resumes from the latest point.
    if (!(await settlesWithin(this.options.history.flush(), 5000)))
      this.log.warn('recording the durable LSN in the slot history took too long at stop');
    this.sendStatus(true);
    for (const timer of this.timers) clearInterval(timer);
    this.flushMetrics();
    const unfinished = error ?? 'the replication session stopped before the commit was durable';
    this.transactions?.abandon(unfinished);
    this.pipeline.abandonSpans(unfinished);
    this.streamingNow = false;
    // A paused socket never sees the server's end of the connection, so closing would hang.
    const socket = this.socket();
    socket?.resume();
    try {
      const closed = await Promise.race([
        (service?.destroy() ?? Promise.resolve()).then(() => true),
        new Promise<false>((resolve) => setTimeout(() => resolve(false), 5000).unref()),
      ]);
      if (!closed) socket?.destroy();
    } catch (closeError) {
      this.log.debug({ err: closeError }, 'closing the replication connection failed');
      socket?.destroy();
    }
    if (error === undefined) this.resolveRun();
    else this.rejectRun(error);
  }
}
