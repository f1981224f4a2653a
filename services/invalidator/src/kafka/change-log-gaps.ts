import type { Admin, Consumer } from 'kafkajs';
import type { Logger } from '@walpurge/core';
import type { ChangeLogGapMetrics } from './change-log-gap-metrics.js';

/** Why offsets of the change topic were never seen by this group. */
export type ChangeLogGapReason =
  /** Records removed from the log's start (retention, DeleteRecords) before they were purged. */
  | 'removed'
  /** The log now starts below what the group had reached: the topic was re-created, or truncated. */
  | 'rewound';

export interface ChangeLogGap {
  partition: number;
  reason: ChangeLogGapReason;
  /** The first offset not purged: where this group was. */
  from: string;
  /** Where consumption resumed. */
  resumedAt: string;
  /** Changes known lost ('removed'); undefined when the count cannot be known ('rewound'). */
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
}

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
 * What it cannot see: a topic re-created under a running consumer whose new log grew past the
 * consumer's position before its next fetch (kafkajs speaks no topic IDs); see the docs.
 */
export class ChangeLogGaps {
  /** Per partition: the offset the next fetched batch should start at. */
  private readonly expected = new Map<number, bigint>();
  private committed: Promise<Map<number, bigint> | undefined> | undefined;

  constructor(private readonly options: ChangeLogGapsOptions) {}

  /**
   * Follows `consumer`: its fetched batches, its group joins (holding the partitions until the
   * committed offsets are read: GROUP_JOIN is emitted before the generation's first fetch) and
   * its leaving. Its eachBatch still awaits ready() and reports each commit (committedUpTo).
   */
  attach(consumer: Consumer): void {
    const { topic } = this.options;
    const { GROUP_JOIN, REBALANCING, START_BATCH_PROCESS, CRASH, STOP, DISCONNECT } = consumer.events;
    consumer.on(GROUP_JOIN, (event) => {
      const partitions = event.payload.memberAssignment[topic] ?? [];
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
    return committed.then(() => undefined);
  }

  /** Resolves once the committed offsets of this join are read: commit nothing before (they would be read instead). */
  async ready(): Promise<void> {
    await this.committed;
  }

  private left(): void {
    this.expected.clear();
    this.committed = undefined;
  }

  /**
   * A batch was fetched (kafkajs START_BATCH_PROCESS, which also fires for batches of control
   * records only). `first` is its first record's offset, control records included; null when empty.
   */
  private fetched(partition: number, first: string | null, last: string, events: number): void {
    if (first === null) return;
    const from = this.expected.get(partition);
    const firstOffset = BigInt(first);
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
    this.expected.set(partition, next);
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
      gap.reason === 'removed'
        ? `${holds} were removed from topic ${topic} before this group purged them (an outage longer than its retention, or records deleted): cache entries derived from them may be stale; purge them (see the runbook, WalpurgeChangesLost)`
        : `topic ${topic} now starts below the offset this group had reached (deleted and re-created, or truncated): ${holds} of the old log not yet purged are lost, how many is unknown; purge what it feeds (see the runbook, WalpurgeChangesLost)`,
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
