import type { Admin, Consumer } from 'kafkajs';
import { retry, sleep, type Logger } from '@walpurge/core';
import type { ChangeLogGapMetrics } from './change-log-gap-metrics.js';
import { TopicIncarnation, type TopicIdSource } from './topic-incarnation.js';

/** Why offsets of the change topic were never seen by this group. */
export type ChangeLogGapReason =
  /** Records removed from the log's start (retention, DeleteRecords) before they were purged. */
  | 'removed'
  /** The log now ends below what the group had reached: the topic was re-created, or truncated. */
  | 'rewound'
  /** The topic has a new ID: deleted and re-created (what the old log still held for the group is lost). */
  | 'replaced';

const REASONS: readonly ChangeLogGapReason[] = ['removed', 'rewound', 'replaced'];

export interface ChangeLogGap {
  partition: number;
  reason: ChangeLogGapReason;
  /** The first offset not purged: where this group was. */
  from: string;
  /** Where consumption resumed. */
  resumedAt: string;
  /** Offsets known lost ('removed'); undefined when the count cannot be known ('rewound', 'replaced'). */
  lost: number | undefined;
}

export interface ChangeLogGapsOptions {
  admin: Pick<Admin, 'fetchOffsets' | 'fetchTopicOffsets'>;
  groupId: string;
  topic: string;
  /** What the topic holds, for the log: 'changes' or 'CDN purges of <provider>'. */
  holds: string;
  metrics: ChangeLogGapMetrics;
  logger: Logger;
  /** Topic IDs, to find a topic re-created under the consumer; without, only a shorter new log is found. */
  topicIds?: TopicIdSource;
  /** How often the topic's ID is compared while partitions are held. */
  checkTopicEveryMs?: number;
}

const CHECK_TOPIC_EVERY_MS = 2_000;
/** The longest a group join holds its partitions for the committed offsets to be read. */
const HOLD_MAX_MS = 3_000;
/** Reads of the brokers a check makes: tried this often, half a second apart, before it gives up. */
const ATTEMPTS = 3;

/**
 * Finds changes that left a topic before this group purged them. kafkajs answers an out-of-range
 * fetch position by starting again at the log's start, without a word: after an outage longer
 * than the topic's retention it skips what expired, and after the topic was re-created shorter it
 * skips what the old log still held. Either leaves cache entries stale.
 *
 * Per partition it knows where the group is (the committed offset at a group join, then every
 * commit and every batch of control records only) and compares each fetched batch's first offset
 * with it:
 * - the same: nothing missed;
 * - further on: transaction markers (harmless) or records removed before they were read, told
 *   apart by the log start offset, read from the brokers only then;
 * - behind, with the log now ending below the group's position: the log was rewound (re-created or
 *   truncated), and what the old log held past that position is lost, how much cannot be known.
 *   (Behind with the log still past it is a batch delivered again, as after a leader moved.)
 *
 * A topic deleted and re-created under a running consumer can look continuous: kafkajs fetches on
 * at its position in the new log, skipping what came before. With topic IDs (topicIds, Kafka
 * 2.8+), the topic's ID is compared after each join and every checkTopicEveryMs: a new one is
 * reported ('replaced') and the held partitions are read again from the new log's start (purges are
 * idempotent); the consumer commits that start before its first purge there (pendingRewind).
 */
export class ChangeLogGaps {
  /** Per partition: the offset the next fetched batch should start at. */
  private readonly expected = new Map<number, bigint>();
  private committed: Promise<Map<number, bigint> | undefined> | undefined;
  /** When this join's partitions may fetch and commit: the committed offsets read, or HOLD_MAX_MS passed. */
  private released: Promise<void> | undefined;
  /** Per partition: where a seek to a re-created topic's start was asked (its batch is not a gap). */
  private readonly seekingTo = new Map<number, bigint>();
  /** Per partition: a seek's start reached, to be committed before anything is purged there. */
  private readonly rewinds = new Map<number, bigint>();
  /** A new topic ID seen: the held partitions still to be sought to the new log's start. */
  private rewindPending = false;
  private readonly incarnation: TopicIncarnation | undefined;
  private consumer: Consumer | undefined;
  private held: number[] = [];
  /** Counts group joins: only the latest releases the partitions it held. */
  private joins = 0;
  private timer: NodeJS.Timeout | undefined;
  private checking: Promise<void> | undefined;

  constructor(private readonly options: ChangeLogGapsOptions) {
    if (options.topicIds)
      this.incarnation = new TopicIncarnation(options.topic, options.topicIds, options.logger);
    // Every series exists from the start at 0: an alert on increase() sees the first gap too.
    const { metrics, topic } = options;
    for (const reason of REASONS) metrics.changeLogGaps.inc({ topic, reason }, 0);
    metrics.lostChanges.inc({ topic }, 0);
  }

  /** Compares the topic's ID every checkTopicEveryMs while partitions are held (no-op without topicIds). */
  start(): void {
    if (!this.incarnation || this.timer) return;
    this.timer = setInterval(() => {
      if (this.held.length > 0) this.checkTopicSoon();
    }, this.options.checkTopicEveryMs ?? CHECK_TOPIC_EVERY_MS);
    this.timer.unref();
  }

  /** Stops the checks (one in flight gets a second) and closes the topic ID reader. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    if (this.checking) await Promise.race([this.checking, sleep(1_000)]);
    await this.incarnation?.close();
  }

  /**
   * Follows `consumer` (the latest one attached: a stalled consumer's late events are ignored):
   * its fetched batches, its group joins (holding the partitions until the committed offsets are
   * read: GROUP_JOIN is emitted before the generation's first fetch) and its leaving. Its eachBatch
   * still awaits ready(), commits pendingRewind() first, and reports each commit (committedUpTo).
   */
  attach(consumer: Consumer): void {
    const { topic } = this.options;
    const { GROUP_JOIN, REBALANCING, START_BATCH_PROCESS, CRASH, STOP, DISCONNECT } = consumer.events;
    this.consumer = consumer;
    const current = (): boolean => consumer === this.consumer;
    consumer.on(GROUP_JOIN, (event) => {
      if (!current()) return;
      const partitions = event.payload.memberAssignment[topic] ?? [];
      this.held = [...partitions];
      const join = ++this.joins;
      const held = [{ topic, partitions: [...partitions] }];
      if (partitions.length > 0) consumer.pause(held);
      void this.joined().finally(() => {
        // A later join holds its own partitions; a consumer stopped meanwhile has none to resume.
        if (join === this.joins && partitions.length > 0) ignoreError(() => consumer.resume(held));
        // After the release: a slow ID read (brokers half away) must not hold the partitions.
        if (join === this.joins) this.checkTopicSoon();
      });
    });
    consumer.on(START_BATCH_PROCESS, (event) => {
      const { payload } = event;
      if (current() && payload.topic === topic)
        this.fetched(payload.partition, payload.firstOffset, payload.lastOffset, payload.batchSize);
    });
    for (const leaving of [REBALANCING, CRASH, STOP, DISCONNECT])
      consumer.on(leaving, () => {
        if (current()) this.left();
      });
  }

  /** Resolves once the committed offsets of this join are read: commit nothing before (they would be read instead). */
  async ready(): Promise<void> {
    await this.released;
  }

  /**
   * The start of a re-created topic this partition was sought to, while its first batch there is
   * handled: commit it before purging anything (then call rewindCommitted), so that a restart or a
   * rebalance from now on resumes there, not where the group had got to in the new log before the
   * new ID was seen.
   */
  pendingRewind(partition: number): bigint | undefined {
    return this.rewinds.get(partition);
  }

  rewindCommitted(partition: number): void {
    this.rewinds.delete(partition);
  }

  /** `next` was committed for `partition`. */
  committedUpTo(partition: number, next: bigint): void {
    // A chunk of a batch fetched before a seek: the seek's batch sets the position.
    if (!this.seekingTo.has(partition)) this.expected.set(partition, next);
  }

  /**
   * A group join: positions start again from the group's committed offsets, read now. Hold the
   * partitions' fetches until this resolves: kafkajs answers an out-of-range position by committing
   * its reset (-2, "earliest") over the group's offset, and the position it replaced is then gone.
   */
  private joined(): Promise<void> {
    this.expected.clear();
    this.seekingTo.clear();
    this.rewinds.clear();
    const { admin, groupId, topic, logger } = this.options;
    // kafkajs's admin retries on its own: one call.
    const committed = admin
      .fetchOffsets({ groupId, topics: [topic] })
      .then((topics) => {
        const offsets = new Map<number, bigint>();
        // -1: nothing committed; -2: a reset kafkajs committed (crashed before its next commit).
        for (const { partition, offset } of topics[0]?.partitions ?? [])
          if (BigInt(offset) >= 0n) offsets.set(partition, BigInt(offset));
        return offsets;
      })
      .catch((error: unknown) => {
        logger.warn(
          { err: error, topic },
          'could not read the committed offsets at this group join: records removed from the topic before this join are not checked',
        );
        return undefined;
      });
    this.committed = committed;
    // Brokers restarting can make the read slow: the partitions wait at most HOLD_MAX_MS, then go on
    // (a reset kafkajs commits meanwhile is then not seen; our own commits are told apart by the
    // log's end, see check).
    const waited = new Promise<void>((resolve) => setTimeout(resolve, HOLD_MAX_MS).unref());
    this.released = Promise.race([committed.then(() => undefined), waited]);
    return this.released;
  }

  private left(): void {
    this.expected.clear();
    this.seekingTo.clear();
    this.rewinds.clear();
    this.committed = undefined;
    this.released = undefined;
    this.held = [];
  }

  private checkTopicSoon(): void {
    if (!this.incarnation) return;
    this.checking ??= this.checkTopic().finally(() => (this.checking = undefined));
  }

  /** Compares the topic's ID, and goes on with a rewind not done yet; never rejects (failures are logged). */
  private async checkTopic(): Promise<void> {
    try {
      if (await this.incarnation?.replaced()) this.replaced();
      if (this.rewindPending) await this.rewind();
    } catch (error) {
      this.options.logger.error({ err: error, topic: this.options.topic }, "could not check the topic's ID");
    }
  }

  /** A new topic ID: reported for every held partition, each to be read again from the new log's start. */
  private replaced(): void {
    for (const partition of this.held)
      this.report({
        partition,
        reason: 'replaced',
        from: this.expected.get(partition)?.toString() ?? 'unknown',
        resumedAt: 'the start of the new log',
        lost: undefined,
      });
    this.rewindPending = true;
  }

  /** Seeks the held partitions to the new log's start; left pending (retried at the next check) when that cannot be read. */
  private async rewind(): Promise<void> {
    const { admin, topic, logger } = this.options;
    const starts = await retrying(() => admin.fetchTopicOffsets(topic)).catch((error: unknown) => {
      logger.error(
        { err: error, topic },
        "could not read the re-created topic's offsets to read it from its start; retrying at the next check",
      );
      return undefined;
    });
    const consumer = this.consumer;
    if (!starts || !consumer) return;
    // Held now, after the wait: a partition handed over meanwhile is its new holder's to rewind.
    for (const partition of this.held) {
      const low = starts.find((entry) => entry.partition === partition)?.low;
      if (low === undefined) continue;
      this.seekingTo.set(partition, BigInt(low));
      try {
        consumer.seek({ topic, partition, offset: low });
      } catch (error) {
        this.seekingTo.delete(partition);
        logger.warn({ err: error, topic, partition }, 'could not read the re-created topic from its start');
        return;
      }
    }
    this.rewindPending = false;
  }

  /**
   * A batch was fetched (kafkajs START_BATCH_PROCESS, which also fires for batches of control
   * records only). `first` is its first record's offset, control records included; null when empty.
   */
  private fetched(partition: number, first: string | null, last: string, events: number): void {
    if (first === null) return;
    const firstOffset = BigInt(first);
    const seekTarget = this.seekingTo.get(partition);
    if (seekTarget !== undefined) {
      // Batches fetched before the seek are stale (eachBatch commits nothing of them): only the seek's counts.
      if (firstOffset !== seekTarget) return;
      this.seekingTo.delete(partition);
      if (events > 0) this.rewinds.set(partition, firstOffset);
      this.expected.set(partition, events === 0 ? BigInt(last) + 1n : firstOffset);
      return;
    }
    const from = this.expected.get(partition);
    // A batch of markers only is never handed to eachBatch: kafkajs moves past it on its own.
    this.expected.set(partition, events === 0 ? BigInt(last) + 1n : firstOffset);
    if (from === firstOffset) return;
    void this.check(partition, from, firstOffset).catch((error: unknown) =>
      this.options.logger.warn(
        { err: error, topic: this.options.topic, partition, first },
        'could not check the topic for records missed before this batch',
      ),
    );
  }

  private async check(partition: number, known: bigint | undefined, first: bigint): Promise<void> {
    // The first batch since the join: compared with what the group had committed.
    const from = known ?? (await this.committed)?.get(partition);
    if (from === undefined || from === first) return;
    const offsets = await retrying(() => this.options.admin.fetchTopicOffsets(this.options.topic));
    const log = offsets.find((entry) => entry.partition === partition);
    const gap = { partition, from: from.toString(), resumedAt: first.toString() };
    if (first < from) {
      // Rewound only when the log itself now ends below the group's position.
      if (log && BigInt(log.high) < from) this.report({ ...gap, reason: 'rewound', lost: undefined });
      return;
    }
    const low = BigInt(log?.low ?? '0');
    // The log start past the group's position: records between were removed unread (counted as
    // offsets, which may include transaction markers). Otherwise the offsets between were control
    // records (transaction markers) or aborted ones.
    if (low <= from) return;
    const upTo = low < first ? low : first;
    this.report({ ...gap, reason: 'removed', lost: Number(upTo - from) });
  }

  /** What left the topic unpurged: entries derived from it may be stale, and nothing can purge them now. */
  private report(gap: ChangeLogGap): void {
    const { metrics, topic, holds, logger } = this.options;
    metrics.changeLogGaps.inc({ topic, reason: gap.reason });
    if (gap.lost !== undefined) metrics.lostChanges.inc({ topic }, gap.lost);
    logger.error(
      { topic, ...gap },
      {
        removed: `${holds} were removed from topic ${topic} before this group purged them (an outage longer than its retention, or records deleted): cache entries derived from them may be stale; purge them (see the runbook, WalpurgeChangesLost)`,
        rewound: `topic ${topic} now ends below the offset this group had reached (deleted and re-created, or truncated): ${holds} of the old log not yet purged are lost, how many is unknown; purge what it feeds (see the runbook, WalpurgeChangesLost)`,
        replaced: `topic ${topic} was deleted and re-created (it has a new topic ID): it is read again from its start, and ${holds} of the old log not yet purged are lost, how many is unknown; purge what it feeds (see the runbook, WalpurgeChangesLost)`,
      }[gap.reason],
    );
  }
}

/** A read of the brokers, tried ATTEMPTS times half a second apart (core's retry, without jitter). */
function retrying<T>(read: () => Promise<T>): Promise<T> {
  return retry(read, { maxAttempts: ATTEMPTS, initialMs: 500, maxMs: 500, jitter: 0 });
}

function ignoreError(action: () => void): void {
  try {
    action();
  } catch {
    // Deliberately nothing: see the caller.
  }
}
