import type { Consumer, EachBatchPayload, Kafka, KafkaMessage } from 'kafkajs';
import type { InvalidatorConfig, KafkaConfig } from '@walpurge/config';
import { activeTracer, isRetriable, type Logger } from '@walpurge/core';
import { decodeAnyChangeEvent, type ChangeEvent } from '@walpurge/protocol';
import { isCdnQueueError } from '../cdn-lane/cdn-queue.js';
import type { InvalidatorMetrics } from '../metrics.js';
import type { Coalescer } from '../pipeline/coalescer.js';
import { isolatePoison } from '../pipeline/isolate-poison.js';
import { chunk } from '../targets/redis/slot-groups.js';
import { rememberOrigin } from '../tracing/batch-links.js';
import type { DeadLetterQueue } from './dead-letter.js';
import { PipelinedCommits } from './pipelined-commits.js';

/** kafkajs's (and Kafka's) default share of one partition in a fetch. */
const MAX_PARTITION_FETCH_BYTES = 1024 * 1024;

export interface ChangeConsumerOptions {
  kafka: Kafka;
  kafkaConfig: KafkaConfig;
  invalidatorConfig: InvalidatorConfig;
  coalescer: Coalescer;
  /** Purges part of a rejected batch on its own, to find which events are the poison ones. */
  handleEvents: (events: readonly ChangeEvent[], signal: AbortSignal) => Promise<void>;
  deadLetters: DeadLetterQueue;
  metrics: InvalidatorMetrics;
  logger: Logger;
  /** Aborts in-flight purges (only when a graceful stop ran out of time). */
  purgeSignal: AbortSignal;
}

/**
 * The consumer group loop. Per partition, messages are handled in offset order in chunks of at most
 * `maxBatchEvents`; a chunk's offset is committed only after all its purges (and dead-letter sends)
 * succeeded. A failing target therefore stalls the partition — backpressure — and nothing past the
 * failure is committed; after a crash the group replays from the last commit. The commit itself is
 * not awaited before the next chunk or fetch (PipelinedCommits); a graceful stop waits for it.
 */
export class ChangeConsumer {
  private readonly consumer: Consumer;
  private joined = false;
  private readonly heartbeatMs: number;
  /** Tracing on: each event's record trace context is kept for its batch span's links. */
  private readonly tracing = activeTracer('@walpurge/invalidator') !== undefined;
  private readonly commits = new PipelinedCommits();

  constructor(private readonly options: ChangeConsumerOptions) {
    const { sessionTimeoutMs } = options.invalidatorConfig;
    this.heartbeatMs = Math.min(3_000, Math.floor(sessionTimeoutMs / 3));
    this.consumer = options.kafka.consumer({
      groupId: options.kafkaConfig.consumerGroup,
      // The session timeout bounds how long a crashed member keeps its partitions (kill -9 never
      // leaves the group); heartbeats go at a third of it, as Kafka recommends.
      sessionTimeout: sessionTimeoutMs,
      heartbeatInterval: this.heartbeatMs,
      // An idle fetch long-polls this long, and a graceful stop waits for it: keep shutdowns short.
      maxWaitTimeInMs: 1_000,
      // The memory bound, in bytes (the broker still returns a first record larger than these).
      maxBytes: options.invalidatorConfig.maxFetchBytes,
      maxBytesPerPartition: Math.min(MAX_PARTITION_FETCH_BYTES, options.invalidatorConfig.maxFetchBytes),
      retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 300, maxRetryTime: 10_000 },
    });
    const { GROUP_JOIN, CRASH, STOP, DISCONNECT } = this.consumer.events;
    this.consumer.on(GROUP_JOIN, (event) => {
      this.joined = true;
      this.commits.rejoined();
      options.logger.info(
        { memberId: event.payload.memberId, assignment: event.payload.memberAssignment },
        'joined the consumer group',
      );
    });
    this.consumer.on(CRASH, (event) => {
      this.joined = false;
      options.logger.error({ err: event.payload.error, restart: event.payload.restart }, 'consumer crashed');
    });
    this.consumer.on(STOP, () => (this.joined = false));
    this.consumer.on(DISCONNECT, () => (this.joined = false));
  }

  isReady(): boolean {
    return this.joined;
  }

  async start(): Promise<void> {
    await this.consumer.connect();
    // A new group starts at the beginning: events produced before the first start are not skipped.
    await this.consumer.subscribe({ topic: this.options.kafkaConfig.topic, fromBeginning: true });
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: this.options.invalidatorConfig.partitionsConsumedConcurrently,
      eachBatch: (payload) => this.eachBatch(payload),
    });
  }

  /**
   * Waits for the in-flight batch to finish and its commits (kafkajs stops between batches, and
   * eachBatch drains the commits once kafkajs stops running), then leaves the group.
   */
  async stop(): Promise<void> {
    await this.drainCommits();
    await this.consumer.disconnect();
  }

  private async drainCommits(): Promise<void> {
    const error = await this.commits.drain();
    if (error !== undefined) {
      this.options.logger.warn(
        { err: error },
        'the last purged offsets could not be committed before stopping; those events will be purged again after the restart',
      );
    }
  }

  private async eachBatch(payload: EachBatchPayload): Promise<void> {
    const { batch, resolveOffset, heartbeat, isRunning, isStale } = payload;
    const { purgeSignal, logger } = this.options;
    // Purges may be retried for a long time while a target is down: keep the group membership alive.
    const beat = setInterval(() => heartbeat().catch(() => undefined), this.heartbeatMs);
    try {
      for (const messages of chunk(batch.messages, this.options.invalidatorConfig.maxBatchEvents)) {
        if (!isRunning() || isStale()) return;
        // A commit of an earlier chunk failed: leave eachBatch as an awaited commit would have.
        this.commits.throwIfFailed();
        const source = { topic: batch.topic, partition: batch.partition };
        const events: ChangeEvent[] = [];
        const eventMessages: KafkaMessage[] = [];
        for (const message of messages) {
          try {
            const event = decodeAnyChangeEvent(message.value, message.key);
            if (event) {
              if (this.tracing) rememberOrigin(event, message.headers);
              events.push(event);
              eventMessages.push(message);
            }
          } catch (error) {
            await this.options.deadLetters.send(source, message, error, 'undecodable', purgeSignal);
          }
        }
        await this.purge(source, events, eventMessages);
        const last = (messages[messages.length - 1] as KafkaMessage).offset;
        const next = (BigInt(last) + 1n).toString();
        // Purged: kafkajs may fetch past it, and its offset is committed in the background.
        resolveOffset(last);
        this.commits.commit(payload, next);
        const lag = BigInt(batch.highWatermark) - BigInt(next);
        this.options.metrics.consumerLag.set(
          { topic: batch.topic, partition: String(batch.partition) },
          Number(lag > 0n ? lag : 0n),
        );
        logger.debug(
          { partition: batch.partition, offset: next, events: events.length },
          'purged; committing',
        );
        await heartbeat().catch(() => undefined);
      }
    } finally {
      clearInterval(beat);
      // kafkajs is stopping: it leaves the group once eachBatch returns, so commit what was purged first.
      if (!isRunning()) await this.drainCommits();
    }
  }

  /**
   * The whole chunk goes through the coalescer, which may merge it with other partitions' chunks.
   * When that merged purge is rejected for good, this chunk is retried on its own (the poison may
   * be another partition's), then bisected (isolatePoison): the poison events are dead-lettered,
   * the others purged.
   */
  private async purge(
    source: { topic: string; partition: number },
    events: ChangeEvent[],
    messages: KafkaMessage[],
  ): Promise<void> {
    const { purgeSignal, logger } = this.options;
    // A CDN queue that cannot take the work is not these events' fault: the partition waits.
    const isFatal = (error: unknown): boolean =>
      purgeSignal.aborted || isRetriable(error) || isCdnQueueError(error);
    try {
      await this.options.coalescer.submit(events);
      return;
    } catch (error) {
      if (isFatal(error)) throw error;
    }
    let rejected = 0;
    const attempts = await isolatePoison(
      events.map((_, i) => i),
      (part) =>
        this.options.handleEvents(
          part.map((i) => events[i] as ChangeEvent),
          purgeSignal,
        ),
      async (i, error) => {
        rejected += 1;
        this.options.metrics.rejectedEvents.inc({ transport: 'kafka' });
        await this.options.deadLetters.send(
          source,
          messages[i] as KafkaMessage,
          error,
          'purge-rejected',
          purgeSignal,
        );
      },
      isFatal,
    );
    logger.warn(
      { partition: source.partition, events: events.length, rejected, attempts },
      rejected > 0
        ? 'a purge was rejected; the poison events were isolated by bisection and dead-lettered'
        : "a coalesced purge was rejected; this partition's events alone were purged",
    );
  }
}
