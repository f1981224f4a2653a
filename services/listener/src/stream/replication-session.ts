import { setMaxListeners } from 'node:events';
import { LogicalReplicationService } from 'pg-logical-replication';
import {
  ErrorCode,
  WalpurgeError,
  errorMessage,
  isWalpurgeError,
  settlesWithin,
  type Logger,
} from '@walpurge/core';
import { formatLsn, parseLsn, type ChangeEvent, type ChangeSink } from '@walpurge/protocol';
import { ChangeAssembler } from '../decode/change-assembler.js';
import { WalpurgePgoutputPlugin, type DecodedMessage } from '../decode/pgoutput-plugin.js';
import { REPLICATION_SESSION_OPTIONS, TypeConverters } from '../decode/value-converters.js';
import type { ListenerMetrics } from '../metrics.js';
import type { PreparedDatabase } from '../setup/prepare.js';
import { AckPipeline } from './ack-pipeline.js';

export interface SessionOptions {
  url: string;
  slot: string;
  publication: string;
  /** Last durable LSN: streaming resumes here (PostgreSQL uses the later of it and the slot's). */
  startLsn: bigint;
  prepared: PreparedDatabase;
  sink: ChangeSink;
  maxConcurrentPublishes: number;
  batchSize: number;
  maxPendingEvents: number;
  statusIntervalMs: number;
  /** How long a stop waits for in-flight sink calls before abandoning them (they replay later). */
  drainTimeoutMs: number;
  logger: Logger;
  metrics: ListenerMetrics;
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

interface PausableStream {
  pause(): void;
  resume(): void;
  destroy(): void;
}

/**
 * pg-logical-replication has no flow control that keeps keepalives in order with data (its
 * `flowControl` queue handles keepalives ahead of queued data), so we pause the connection's socket
 * ourselves: the same internal field the library's own flowControl pauses.
 */
function socketOf(service: LogicalReplicationService): PausableStream | undefined {
  const connection = (service as unknown as { _connection?: { stream?: Partial<PausableStream> } | null })
    ._connection;
  const stream = connection?.stream;
  return stream &&
    typeof stream.pause === 'function' &&
    typeof stream.resume === 'function' &&
    typeof stream.destroy === 'function'
    ? (stream as PausableStream)
    : undefined;
}

/**
 * One replication connection, from START_REPLICATION to its end. Always built fresh: the library's
 * service object remembers the last *received* LSN and would resume from there, skipping changes the
 * sink never acknowledged. The slot's confirmed LSN is reported only by us, only with positions whose
 * events the sink acknowledged (the library's auto-ack and its timer are off).
 */
export class ReplicationSession {
  private durable: bigint;
  private chunk: ChangeEvent[] = [];
  private paused = false;
  private streamingNow = false;
  private ending: Promise<void> | undefined;
  private service: LogicalReplicationService | undefined;
  private pipeline!: AckPipeline;
  private assembler!: ChangeAssembler;
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

  constructor(private readonly options: SessionOptions) {
    this.durable = options.startLsn;
    this.log = options.logger;
    // One abort listener per in-flight sink call (up to maxConcurrentPublishes), removed as each settles.
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
      onProgress: () => this.maybeResume(),
    });

    const service = new LogicalReplicationService(
      {
        connectionString: options.url,
        application_name: 'walpurge-listener',
        options: REPLICATION_SESSION_OPTIONS,
      },
      { acknowledge: { auto: false, timeoutSeconds: 0 }, flowControl: { enabled: false } },
    );
    this.service = service;
    service.on('data', (_lsn: string, decoded: DecodedMessage) => this.onData(decoded));
    service.on('heartbeat', (walEnd: string, _timestamp: number, shouldRespond: boolean) =>
      this.onKeepalive(walEnd, shouldRespond),
    );
    service.on('error', (error: Error) => this.end(error));
    service.on('start', () => {
      this.streamingNow = true;
      this.log.info({ slot: options.slot, from: formatLsn(this.durable) }, 'streaming changes');
      this.sendStatus(true);
      options.onStreaming();
    });
    const statusEvery = Math.max(100, options.statusIntervalMs);
    this.timers.push(setInterval(() => this.sendStatus(true), statusEvery));
    this.timers.push(setInterval(() => this.flushMetrics(), 1000));

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
    this.receivedBytes += decoded.bytes;
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
        this.commitTimeMs = output.commitTimeMs;
        break;
      case 'events':
        for (const event of output.events) {
          this.chunk.push(event);
          const label = `${event.source.schema}.${event.source.table}\u0000${event.op}`;
          this.eventCounts.set(label, (this.eventCounts.get(label) ?? 0) + 1);
          if (this.chunk.length >= this.options.batchSize) {
            // A big transaction streams to the sink in chunks; its commit is acknowledged after the last.
            // Each chunk carries the commit time, so lag in seconds shows while a huge one is in flight.
            this.pipeline.push(this.chunk, undefined, this.commitTimeMs);
            this.chunk = [];
          }
        }
        break;
      case 'commit':
        this.pipeline.push(this.chunk, output.endLsn, output.commitTimeMs);
        this.chunk = [];
        break;
    }
    if (!this.paused && this.pipeline.pendingEvents + this.chunk.length >= this.options.maxPendingEvents) {
      const stream = this.service && socketOf(this.service);
      if (stream) {
        stream.pause();
        this.paused = true;
        this.options.metrics.pauses.inc();
      }
    }
  }

  private maybeResume(): void {
    if (!this.paused || this.ending) return;
    if (this.pipeline.pendingEvents + this.chunk.length > this.options.maxPendingEvents / 2) return;
    const stream = this.service && socketOf(this.service);
    stream?.resume();
    this.paused = false;
  }

  /**
   * A keepalive carries the server's WAL position, everything before which has been sent to us.
   * Outside a transaction, once every earlier chunk is acknowledged, that position is durable too:
   * this is what lets the slot follow an idle database or one whose writes are all unpublished.
   */
  private onKeepalive(walEndText: string, shouldRespond: boolean): void {
    if (this.ending) return;
    let walEnd: bigint;
    try {
      walEnd = parseLsn(walEndText);
    } catch {
      return;
    }
    if (!this.assembler.inTransaction && this.chunk.length === 0) this.pipeline.push([], walEnd);
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
    try {
      void service.acknowledge(formatLsn(position - 1n));
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
    metrics.lagSeconds.set(oldest === undefined ? 0 : Math.max(0, Date.now() - oldest) / 1000);
    metrics.pendingEvents.set(this.pipeline.pendingEvents + this.chunk.length);
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
    if (service) socketOf(service)?.pause();
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
    this.streamingNow = false;
    // A paused socket never sees the server's end of the connection, so closing would hang.
    const socket = service && socketOf(service);
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
