import type { EachBatchPayload } from 'kafkajs';

/**
 * Commits `next` as the batch's partition's committed offset, from inside eachBatch.
 *
 * Through the batch's own commitOffsetsIfNecessary, never consumer.commitOffsets: the latter retries
 * (with the consumer's retry policy, unbounded in walpurge) against the group coordinator it cached.
 * When that broker restarts and the group's coordinator moves, it answers "not the correct
 * coordinator" to every retry, and the partition's purges stop until the member is evicted. Here the
 * error leaves eachBatch instead: kafkajs then finds the new coordinator and rejoins, and the batch
 * is delivered again from the last committed offset (purges are idempotent). Resolve the batch's
 * offset only after this returns: on any other failure kafkajs fetches again from the last resolved
 * offset, and the chunk must come back to be committed.
 */
export async function commitBatchOffset(
  payload: Pick<EachBatchPayload, 'batch' | 'commitOffsetsIfNecessary'>,
  next: bigint | string,
): Promise<void> {
  const { topic, partition } = payload.batch;
  await payload.commitOffsetsIfNecessary({
    topics: [{ topic, partitions: [{ partition, offset: next.toString() }] }],
  });
}
