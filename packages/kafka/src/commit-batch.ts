import type { EachBatchPayload } from 'kafkajs';

/**
 * Commits `next` as the batch's partition's committed offset, from inside eachBatch.
 *
 * Through the batch's own commitOffsetsIfNecessary, never consumer.commitOffsets: the latter retries
 * (with the consumer's retry policy, unbounded in walpurge) against the group coordinator it cached.
 * When that broker restarts and the group's coordinator moves, it answers "not the correct
 * coordinator" to every retry, and the partition's purges stop until the member is evicted. Here the
 * error leaves eachBatch instead: kafkajs then finds the new coordinator and rejoins, and the batch
 * is delivered again from the last committed offset (purges are idempotent). Called from outside
 * eachBatch (a commit pipelined behind the next chunk), it must not swallow its error: the caller
 * carries it into the next eachBatch.
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
