import type { Admin } from 'kafkajs';
import type { Logger } from '@walpurge/core';

export interface StallWatchdogOptions {
  admin: Admin;
  groupId: string;
  topic: string;
  /** A partition behind its high watermark for this long without a batch is stalled. */
  stallAfterMs: number;
  /** Partitions this member holds now (empty while not in the group). */
  assigned(): readonly number[];
  /** When a batch of `partition` last started (ms since epoch; 0: never). */
  lastBatchAt(partition: number): number;
  /**
   * The offset after the last record the consumer fetched of `partition` in this assignment, if
   * any: batches of control or aborted records only (a transactional producer's commit markers)
   * move it without reaching eachBatch or a commit.
   */
  fetchedUpTo(partition: number): bigint | undefined;
  /** Whether a batch of `partition` is being handled now (a slow or failing target: backpressure, not a stall). */
  busy(partition: number): boolean;
  /** The broker-side lag of each held partition, every check (the gauge would otherwise freeze). */
  onLag(partition: number, lag: number): void;
  /** Called once per stall; the watchdog waits for it before checking again. */
  onStall(stalled: Array<{ partition: number; lag: number; forMs: number }>): Promise<void>;
  logger: Logger;
}

/**
 * Notices a consumer that stopped fetching while the topic has changes for it: a member that stays
 * in its group, heartbeating, with a fetch loop that no longer brings its partitions (a partition
 * paused, a fetcher stuck) stops purging, and the lag gauge used to freeze at its last value (0),
 * since it was only set from the batches handled. What it cannot see: a broker answering with a
 * stale high watermark for partitions it no longer leads (the consumer's metadata refresh covers
 * that, see ChangeConsumer), since this check asks the brokers too. Every
 * `stallAfterMs / 5` it reads the group's committed offsets and the high watermarks from the
 * brokers: a held partition whose position (the committed offset, or further what was fetched, or
 * the log start when older records expired) stays behind the high watermark for `stallAfterMs`
 * while no batch of it started and none is in progress is stalled. The clock starts at the group
 * join: a member waiting in a rebalance holds nothing.
 */
export class StallWatchdog {
  /** Per partition: since when it has been behind at the same position (committed/fetched). */
  private behind = new Map<number, { since: number; mark: string }>();
  private timer: NodeJS.Timeout | undefined;
  private checking: Promise<void> | undefined;
  private stopped = false;
  private failing = false;

  constructor(private readonly options: StallWatchdogOptions) {}

  start(): void {
    this.stopped = false;
    const intervalMs = Math.max(200, Math.floor(this.options.stallAfterMs / 5));
    this.timer = setInterval(() => {
      this.checking ??= this.check()
        .then(() => {
          this.failing = false;
        })
        .catch((error: unknown) => {
          // Brokers away are the consumer's to retry and report; a check that keeps failing (say,
          // no Describe permission on the group) leaves stalls unseen, so its first failure warns.
          const level = this.failing ? 'debug' : 'warn';
          this.failing = true;
          this.options.logger[level](
            { err: error },
            'could not check the consumer for stalls (committed offsets, high watermarks); retrying',
          );
        })
        .finally(() => (this.checking = undefined));
    }, intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.checking;
  }

  /** The group is rebalancing or was joined again: what was measured before is moot. */
  reset(): void {
    this.behind.clear();
  }

  /** One check (exposed for tests); resolves after onStall when it found a stall. */
  async check(now = Date.now()): Promise<void> {
    const { admin, groupId, topic, stallAfterMs } = this.options;
    const held = new Set(this.options.assigned());
    if (held.size === 0) {
      this.behind.clear();
      return;
    }
    const [committedByTopic, highs] = await Promise.all([
      admin.fetchOffsets({ groupId, topics: [topic] }),
      admin.fetchTopicOffsets(topic),
    ]);
    const committed = new Map(
      (committedByTopic[0]?.partitions ?? []).map((entry) => [entry.partition, entry.offset]),
    );
    const stalled: Array<{ partition: number; lag: number; forMs: number }> = [];
    for (const { partition, high, low } of highs) {
      if (!held.has(partition)) {
        this.behind.delete(partition);
        continue;
      }
      // Nothing committed yet, or only records since expired: kafkajs starts at the log start (low).
      const at = committed.get(partition) ?? '-1';
      const fetched = this.options.fetchedUpTo(partition) ?? -1n;
      const position = latest(BigInt(at), BigInt(low), fetched);
      const behindFrom = (offset: bigint): number =>
        Number(BigInt(high) > offset ? BigInt(high) - offset : 0n);
      const lag = behindFrom(position);
      const mark = `${at}/${fetched}`;
      // The gauge counts what is not purged yet: a batch in progress (a target down) is still lag;
      // what was fetched and is no longer in progress was purged, or was only transaction markers.
      const done = this.options.busy(partition) ? BigInt(at) : position;
      const undone = latest(done, BigInt(low));
      this.options.onLag(partition, behindFrom(undone));
      const previous = this.behind.get(partition);
      if (lag === 0) {
        this.behind.delete(partition);
        continue;
      }
      if (!previous || previous.mark !== mark) {
        this.behind.set(partition, { since: now, mark });
        continue;
      }
      const forMs = now - previous.since;
      if (
        forMs >= stallAfterMs &&
        this.options.lastBatchAt(partition) < previous.since &&
        !this.options.busy(partition)
      )
        stalled.push({ partition, lag, forMs });
    }
    if (stalled.length === 0 || this.stopped) return;
    this.behind.clear();
    await this.options.onStall(stalled);
  }
}

/** The furthest of some offsets. */
function latest(...offsets: bigint[]): bigint {
  return offsets.reduce((a, b) => (b > a ? b : a));
}
