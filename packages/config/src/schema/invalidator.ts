import { z } from 'zod';
import { milliseconds, positiveInt } from './common.js';

/** How the invalidator batches, retries and drains. Defaults favour low latency over throughput. */
export const InvalidatorConfig = z.strictObject({
  // 0 by default: a timed window is paid once per round of partitions (kafkajs fetches again only
  // when every partition of a fetch is done), and 10 ms made the p50 at 5,000 changes/s 30 ms.
  coalesceWindowMs: milliseconds
    .default(0)
    .describe(
      'Collect events for at most this long before purging, so the same key purged by many events is sent once. 0 merges only what arrives together (the partitions of one fetch) and adds no wait; a window adds up to itself per round of partitions to every change.',
    ),
  maxBatchEvents: positiveInt
    .default(1000)
    .describe('Purge as soon as this many events are waiting, even inside the coalescing window.'),
  // Counted in bytes, not events: a fetch of 1 MB rows holds as much as a thousand times more small ones.
  maxFetchBytes: positiveInt
    .min(1024)
    .default(10 * 1024 * 1024)
    .describe(
      "Memory budget of a Kafka invalidator: most bytes of change events one fetch from the brokers brings in (each partition's share at most 1 MiB, or this when smaller). An event larger than this is still fetched, alone, so nothing stalls. The heap holds a few times this (decoded events, purge plans).",
    ),
  // Above the partitions a process holds: kafkajs fetches again only when every partition of a
  // fetch is done, and partitions beyond this limit wait for a second round (4 of 6 cost latency).
  partitionsConsumedConcurrently: positiveInt
    .default(16)
    .describe(
      'Kafka partitions processed in parallel (order is kept within each partition). Keep it at least the partitions one process holds: the rest of a fetch waits for a second round.',
    ),
  retryInitialMs: milliseconds
    .default(100)
    .describe('First delay before retrying a failed purge; doubles up to retryMaxMs, with jitter.'),
  retryMaxMs: milliseconds
    .default(10_000)
    .describe('Longest delay between purge retries. Purges are retried until they succeed.'),
  stopTimeoutMs: milliseconds
    .default(15_000)
    .describe(
      'On shutdown, how long an in-flight batch may take to finish (and be committed) before it is abandoned uncommitted and replayed later.',
    ),
  stallTimeoutMs: z
    .number()
    .int()
    .min(1_000)
    .default(15_000)
    .describe(
      'A held partition behind its high watermark this long with no batch of it started (and none in progress) counts as a stalled consumer: it is logged, counted (walpurge_invalidator_consumer_stalls_total) and the consumer is restarted. A slow or failing purge target is not a stall (its batch is in progress).',
    ),
  sessionTimeoutMs: z
    .number()
    .int()
    .min(6_000)
    .default(30_000)
    .describe(
      'Kafka consumer group session timeout: how long until the partitions of a crashed invalidator move to another member (must lie within the broker group.min/max.session.timeout.ms).',
    ),
  redisBatchSize: positiveInt.default(500).describe('Keys per UNLINK command; commands are pipelined.'),
  redisScanCount: positiveInt
    .default(1000)
    .describe('COUNT hint of each SCAN / SSCAN step when purging patterns and tags.'),
  redisSweepMinWindowMs: milliseconds
    .default(0)
    .describe(
      'Pattern purges are served by keyspace sweeps shared by every batch waiting at that moment; a sweep starts at least this long after the previous one ended (redisSweepMaxWindowMs wins if it is smaller).',
    ),
  redisSweepWindowFactor: z
    .number()
    .nonnegative()
    .default(1)
    .describe(
      'The pause between two pattern sweeps is this many times the duration of the last sweep (within redisSweepMinWindowMs and redisSweepMaxWindowMs): 1 lets Redis spend at most about half of its time on our SCANs, and a slower sweep serves more patterns at once.',
    ),
  redisSweepMaxWindowMs: milliseconds
    .default(2_000)
    .describe(
      'Longest pause between two pattern sweeps, however slow the last one was: bounds the extra latency of a pattern purge.',
    ),
});
export type InvalidatorConfig = z.infer<typeof InvalidatorConfig>;
