import type pg from 'pg';
import { ErrorCode, WalpurgeError, errorMessage, type Logger } from '@walpurge/core';
import { closeSidePool, sidePool } from '../setup/side-pool.js';
import { recordDurableLsn } from '../setup/slot-history.js';
import type { DatabaseConnection } from '@walpurge/config';

export interface HistoryRecorderOptions {
  connection: DatabaseConnection;
  table: string;
  slot: string;
  systemIdentifier: string;
  /** The recorded durable LSN at start. */
  recorded: bigint;
  /** Least time between two writes while commits arrive. */
  minIntervalMs: number;
  /** Least time between two writes when only keepalive positions moved (an idle database). */
  idleIntervalMs: number;
  logger: Logger;
  /** The ceiling went up: positions up to it may now be reported to the slot. */
  onRecorded(): void;
  /** A write failed (or the row is gone): the session ends, and the next start checks the history again. */
  onError(error: unknown): void;
}

/**
 * Keeps the slot history's durable LSN at or ahead of every position reported to the slot: the
 * session reports min(durable, ceiling) and asks for the ceiling to be raised. Writes are rate
 * limited (one small UPDATE per second at most while commits arrive, one per status interval when
 * idle, since each write is itself WAL that moves the position), so the slot trails the durable
 * position by about that much: a little more WAL retained and a little more replayed after a crash.
 */
export class HistoryRecorder {
  private value: bigint;
  private wanted: bigint;
  private wantedCommit = false;
  private lastWriteAt = 0;
  private writing: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly pool: pg.Pool;

  constructor(private readonly options: HistoryRecorderOptions) {
    this.value = options.recorded;
    this.wanted = options.recorded;
    this.pool = sidePool(options.connection, 'walpurge-listener-history');
  }

  /** Highest position that may be reported to the slot. */
  get ceiling(): bigint {
    return this.value;
  }

  /** The session holds `lsn` durable; `commit` when a transaction (not just a keepalive) got there. */
  raise(lsn: bigint, commit: boolean): void {
    if (this.closed || lsn <= this.wanted) return;
    this.wanted = lsn;
    this.wantedCommit ||= commit;
    this.schedule();
  }

  /** Records what was asked for now, ignoring the rate limit (at the end of a session). */
  async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.writing;
    if (this.wanted > this.value && !this.closed) await this.write();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    await closeSidePool(this.pool, this.writing);
  }

  private schedule(): void {
    if (this.writing || this.timer || this.closed || this.wanted <= this.value) return;
    const interval = this.wantedCommit ? this.options.minIntervalMs : this.options.idleIntervalMs;
    const wait = this.lastWriteAt + interval - Date.now();
    if (wait <= 0) void this.write();
    else
      this.timer = setTimeout(() => {
        this.timer = undefined;
        void this.write();
      }, wait);
  }

  private write(): Promise<void> {
    this.writing ??= (async () => {
      const target = this.wanted;
      this.wantedCommit = false;
      this.lastWriteAt = Date.now();
      try {
        const recorded = await recordDurableLsn(
          this.pool,
          this.options.table,
          this.options.slot,
          this.options.systemIdentifier,
          target,
        );
        if (recorded === undefined) {
          throw new Error(
            `the row of slot "${this.options.slot}" in ${this.options.table} is gone or names another cluster`,
          );
        }
        if (recorded > this.value) this.value = recorded;
      } catch (error) {
        this.closed = true;
        this.options.logger.warn(
          { err: error, table: this.options.table },
          `could not record the durable LSN in the slot history: ${errorMessage(error)}`,
        );
        this.options.onError(
          new WalpurgeError(
            ErrorCode.Replication,
            `could not record the durable LSN in the slot history ${this.options.table}: ${errorMessage(error)}`,
            {
              // Nothing was lost (the slot is held at the recorded position); the next start checks the
              // history again and refuses if the row is gone.
              retriable: true,
              cause: error,
              hint: `the listener's role needs SELECT, INSERT and UPDATE on ${this.options.table}; walpurge reconnects and retries`,
            },
          ),
        );
        return;
      } finally {
        this.writing = undefined;
      }
      this.options.onRecorded();
      this.schedule();
    })();
    return this.writing;
  }
}
