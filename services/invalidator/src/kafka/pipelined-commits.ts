import type { EachBatchPayload } from 'kafkajs';
import { commitBatchOffset } from '@walpurge/kafka';

type CommitPayload = Pick<EachBatchPayload, 'batch' | 'commitOffsetsIfNecessary'>;

interface Lane {
  /** The newest purged offset not yet sent; a later one replaces it (commits are cumulative). */
  pending: { payload: CommitPayload; next: string } | undefined;
  /** Settles when the lane has nothing in flight and nothing pending. */
  running: Promise<void> | undefined;
}

/**
 * Commits each partition's purged offsets off the fetch path. kafkajs fetches again only once every
 * partition of the previous fetch returned from eachBatch, so an awaited commit (a round trip to the
 * group coordinator) delayed every change behind it. Here a purged chunk's offset is handed over and
 * the partition goes on; per partition one commit is in flight and only the newest offset waits
 * behind it.
 *
 * What does not change: an offset is handed over only after its chunk was purged, so nothing is ever
 * committed ahead of its purges. A commit that fails is kept and thrown by the next `throwIfFailed`
 * (the next chunk of any partition), so the error leaves eachBatch as an awaited commit's did and
 * kafkajs recovers the same way (finds the coordinator, rejoins); after a rejoin kafkajs fetches from
 * the committed offsets, so a chunk whose commit was lost is delivered and purged again (purges are
 * idempotent). Failures and offsets of an earlier group generation are dropped at the rejoin: the
 * partitions may have moved, and kafkajs has already recovered.
 */
export class PipelinedCommits {
  private readonly lanes = new Map<string, Lane>();
  private failure: { error: unknown } | undefined;
  private generation = 0;

  /** Hands over `next` (the offset after a purged chunk) for `payload`'s partition. */
  commit(payload: CommitPayload, next: string): void {
    const key = `${payload.batch.topic}\u0000${payload.batch.partition}`;
    let lane = this.lanes.get(key);
    if (!lane) {
      lane = { pending: undefined, running: undefined };
      this.lanes.set(key, lane);
    }
    lane.pending = { payload, next };
    lane.running ??= this.run(lane, this.generation);
  }

  /** Throws the first commit failure since the last call (once), so it leaves eachBatch. */
  throwIfFailed(): void {
    const failure = this.failure;
    if (!failure) return;
    this.failure = undefined;
    throw failure.error;
  }

  /** The group was (re)joined: what the previous generation still had to commit is moot. */
  rejoined(): void {
    this.generation += 1;
    this.failure = undefined;
    for (const lane of this.lanes.values()) lane.pending = undefined;
  }

  /**
   * Sends what is still pending (once more for an offset whose commit failed) and waits until every
   * handed-over offset was committed or failed. A graceful stop calls it before leaving the group.
   * Returns the first failure, if any: those chunks are purged again after the restart.
   */
  async drain(): Promise<unknown> {
    for (const lane of this.lanes.values()) {
      if (lane.pending) lane.running ??= this.run(lane, this.generation);
    }
    for (;;) {
      const running = [...this.lanes.values()].flatMap((lane) => (lane.running ? [lane.running] : []));
      if (running.length === 0) break;
      await Promise.all(running);
    }
    const failure = this.failure;
    this.failure = undefined;
    return failure?.error;
  }

  private async run(lane: Lane, generation: number): Promise<void> {
    try {
      while (lane.pending && generation === this.generation) {
        const { payload, next } = lane.pending;
        lane.pending = undefined;
        try {
          await commitBatchOffset(payload, next);
          // The coordinator answers again: nothing left for kafkajs to recover from.
          if (generation === this.generation) this.failure = undefined;
        } catch (error) {
          if (generation !== this.generation) return;
          this.failure ??= { error };
          // Kept for the partition's next commit or the drain: if nothing newer comes (an idle
          // partition), this offset is what a restart would otherwise replay from.
          lane.pending ??= { payload, next };
          return;
        }
      }
    } finally {
      lane.running = undefined;
    }
  }
}
