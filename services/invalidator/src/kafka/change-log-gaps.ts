import type { Admin, Consumer } from 'kafkajs';
import type { Logger } from '@walpurge/core';
import type { ChangeLogGapMetrics } from './change-log-gap-metrics.js';
import { TopicIncarnation, type TopicIdSource } from './topic-incarnation.js';

/** Why offsets of the change topic were never seen by this group. */
export type ChangeLogGapReason =
  /** Records removed from the log's start (retention, DeleteRecords) before they were purged. */
  | 'removed'
  /** The log now starts below what the group had reached: the topic was re-created, or truncated. */
  | 'rewound'
  /** The topic has a new ID: deleted and re-created (what the old log still held for the group is lost). */
  | 'replaced';

export interface ChangeLogGap {
  partition: number;
  reason: ChangeLogGapReason;
  /** The first offset not purged: where this group was. */
  from: string;
  /** Where consumption resumed. */
  resumedAt: string;
  /** Changes known lost ('removed'); undefined when the count cannot be known ('rewound', 'replaced'). */
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

/**
 * Finds changes that left the change topic before this group purged them. kafkajs answers an
 * out-of-range fetch position by starting again at the log's start, without a word: after an
 * outage longer than the topic's retention it skips what expired, and after the topic was
 * re-created shorter it skips what the old log still held. Either leaves cache entries stale.
 *
 * Per partition it knows where the group is (the committed offset at a group join, then every
 * commit and every batch of control records only) and compares each fetched batch's first offset
 * with it:
 * - the same: nothing missed;
 * - further on: transaction markers (harmless) or records removed before they were read, told
 *   apart by the log start offset, read from the brokers only then;
 * - behind: the log was rewound (re-created or truncated): what was after the group's position in
 *   the old log and not purged yet is lost, and how much cannot be known.
 *
 * A topic deleted and re-created under a running consumer can look continuous: kafkajs fetches on
 * at its position in the new log, skipping what came before it. With topic IDs (topicIds, Kafka
 * 2.8+), the topic's ID is compared at each join and every checkTopicEveryMs: a new one is reported
 * ('replaced') and the held partitions are read again from the new log's start (purges are
 * idempotent), so only what the old log still held is lost.
 */
export class ChangeLogGaps {
  /** Per partition: the offset the next fetched batch should start at. */
  private readonly expected = new Map<number, bigint>();
  private committed: Promise<Map<number, bigint> | undefined> | undefined;
  /** Per partition: where a seek to a re-created topic's start was asked (its batch is not a gap). */
  private readonly seekingTo = new Map<number, bigint>();
  private readonly incarnation: TopicIncarnation | undefined;
  private consumer: Consumer | undefined;
  private held: number[] = [];
  private timer: NodeJS.Timeout | undefined;
  private checking: Promise<void> | undefined;

  constructor(private readonly options: ChangeLogGapsOptions) {
    if (options.topicIds)
      this.incarnation = new TopicIncarnation(options.topic, options.topicIds, options.logger);
  }

  /** Compares the topic's ID every checkTopicEveryMs while partitions are held (no-op without topicIds). */
  start(): void {
    if (!this.incarnation || this.timer) return;
    this.timer = setInterval(() => {
      if (this.held.length > 0)
        this.checking ??= this.checkTopic().finally(() => (this.checking = undefined));
    }, this.options.checkTopicEveryMs ?? CHECK_TOPIC_EVERY_MS);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.checking;
    await this.incarnation?.close();
  }

  /**
   * Follows `consumer`: its fetched batches, its group joins (holding the partitions until the
   * committed offsets are read: GROUP_JOIN is emitted before the generation's first fetch) and
   * its leaving. Its eachBatch still awaits ready() and reports each commit (committedUpTo).
   */
  attach(consumer: Consumer): void {
    const { topic } = this.options;
    const { GROUP_JOIN, REBALANCING, START_BATCH_PROCESS, CRASH, STOP, DISCONNECT } = consumer.events;
    this.consumer = consumer;
    consumer.on(GROUP_JOIN, (event) => {
      const partitions = event.payload.memberAssignment[topic] ?? [];
      this.held = [...partitions];
      const held = [{ topic, partitions: [...partitions] }];
      if (partitions.length > 0) consumer.pause(held);
      void this.joined().finally(() => {
        // A consumer stopped meanwhile has nothing to resume.
        if (partitions.length > 0) ignoreError(() => consumer.resume(held));
      });
    });
    consumer.on(START_BATCH_PROCESS, (event) => {
      const { payload } = event;
      if (payload.topic === topic)
        this.fetched(payload.partition, payload.firstOffset, payload.lastOffset, payload.batchSize);
    });
    for (const leaving of [REBALANCING, CRASH, STOP, DISCONNECT]) consumer.on(leaving, () => this.left());
  }

  /**
   * A group join: positions start again from the group's committed offsets, read now. Hold the
   * partitions' fetches until this resolves: kafkajs answers an out-of-range position by committing
   * its reset (-2, "earliest") over the group's offset, and the position it replaced is then gone.
   */
  private joined(): Promise<void> {
    this.expected.clear();
    this.seekingTo.clear();
    const { admin, groupId, topic, logger } = this.options;
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
          { err: error },
          'could not read the committed offsets at this group join: offsets missing from the change topic before this join are not checked',
        );
        return undefined;
      });
    this.committed = committed;
    // The topic replaced since the last look (a rebalance meanwhile): read again from its start.
    return Promise.all([committed, this.checkTopic()]).then(() => undefined);
  }

  /** Compares the topic's ID; never rejects (a failure is logged, the next check tries again). */
  private async checkTopic(): Promise<void> {
    try {
      await this.followReplacement();
    } catch (error) {
      this.options.logger.error({ err: error, topic: this.options.topic }, "could not check the topic's ID");
    }
  }

  /** A new topic ID: reported, and every held partition read again from the new log's start. */
  private async followReplacement(): Promise<void> {
    if (!this.incarnation || !(await this.incarnation.replaced())) return;
    const { admin, topic, logger } = this.options;
    const partitions = [...this.held];
    const starts = await admin.fetchTopicOffsets(topic).catch((error: unknown) => {
      logger.error(
        { err: error, topic },
        "could not read the re-created topic's offsets to read it from its start",
      );
      return [];
    });
    for (const partition of partitions) {
      const from = this.expected.get(partition);
      const low = starts.find((entry) => entry.partition === partition)?.low;
      this.report({
        partition,
        reason: 'replaced',
        from: from?.toString() ?? 'unknown',
        resumedAt: low ?? 'unknown',
        lost: undefined,
      });
      if (low === undefined || !this.consumer) continue;
      this.seekingTo.set(partition, BigInt(low));
      try {
        this.consumer.seek({ topic, partition, offset: low });
      } catch (error) {
        // Not held any more (a rebalance): the next holder starts from the group's offsets.
        this.seekingTo.delete(partition);
        logger.warn({ err: error, topic, partition }, 'could not read the re-created topic from its start');
      }
    }
  }

  /** Resolves once the committed offsets of this join are read: commit nothing before (they would be read instead). */
  async ready(): Promise<void> {
    await this.committed;
  }

  private left(): void {
    this.expected.clear();
    this.seekingTo.clear();
    this.committed = undefined;
    this.held = [];
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
      // Batches fetched before the seek are stale (eachBatch skips them): only the seek's counts.
      if (firstOffset !== seekTarget) return;
      this.seekingTo.delete(partition);
      this.expected.set(partition, events === 0 ? BigInt(last) + 1n : firstOffset);
      return;
    }
    const from = this.expected.get(partition);
    // A batch of markers only is never handed to eachBatch: kafkajs moves past it on its own.
    this.expected.set(partition, events === 0 ? BigInt(last) + 1n : firstOffset);
    if (from === firstOffset) return;
    void this.check(partition, from, firstOffset).catch((error: unknown) =>
      this.options.logger.warn(
        { err: error, partition, first },
        'could not check the change topic for changes missed before this batch',
      ),
    );
  }

  /** `next` was committed for `partition`. */
  committedUpTo(partition: number, next: bigint): void {
    // A chunk of the stale batch committed after a seek: the seek's batch sets the position.
    if (!this.seekingTo.has(partition)) this.expected.set(partition, next);
  }

  private async check(partition: number, known: bigint | undefined, first: bigint): Promise<void> {
    // The first batch since the join: compared with what the group had committed.
    const from = known ?? (await this.committed)?.get(partition);
    if (from === undefined || from === first) return;
    const gap = { partition, from: from.toString(), resumedAt: first.toString() };
    if (first < from) {
      this.report({ ...gap, reason: 'rewound', lost: undefined });
      return;
    }
    const offsets = await this.options.admin.fetchTopicOffsets(this.options.topic);
    const low = BigInt(offsets.find((entry) => entry.partition === partition)?.low ?? '0');
    // The log start past the group's position: records between were removed unread. Otherwise the
    // offsets between were control records (transaction markers) or aborted ones.
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
        rewound: `topic ${topic} now starts below the offset this group had reached (deleted and re-created, or truncated): ${holds} of the old log not yet purged are lost, how many is unknown; purge what it feeds (see the runbook, WalpurgeChangesLost)`,
        replaced: `topic ${topic} was deleted and re-created (it has a new topic ID): it is read again from its start, and ${holds} of the old log not yet purged are lost, how many is unknown; purge what it feeds (see the runbook, WalpurgeChangesLost)`,
      }[gap.reason],
    );
  }
}

function ignoreError(action: () => void): void {
  try {
    action();
  } catch {
    // Deliberately nothing: see the caller.
  }
}
