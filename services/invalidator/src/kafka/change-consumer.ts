import type { Admin, Consumer, EachBatchPayload, Kafka, KafkaMessage } from 'kafkajs';
import type { InvalidatorConfig, KafkaConfig } from '@walpurge/config';
import { activeTracer, isRetriable, sleep, type Logger } from '@walpurge/core';
import { CONSUMER_METADATA_MAX_AGE_MS, TopicIdReader, commitBatchOffset } from '@walpurge/kafka';
import { decodeAnyChangeEvent, type ChangeEvent } from '@walpurge/protocol';
import { isCdnQueueError } from '../cdn-lane/cdn-queue.js';
import type { InvalidatorMetrics } from '../metrics.js';
import type { Coalescer } from '../pipeline/coalescer.js';
import { isolatePoison } from '../pipeline/isolate-poison.js';
import { chunk } from '../targets/redis/slot-groups.js';
import { rememberOrigin } from '../tracing/batch-links.js';
import type { DeadLetterQueue } from './dead-letter.js';
import { ChangeLogGaps } from './change-log-gaps.js';
import { StallWatchdog } from './stall-watchdog.js';
import type { TopicIdSource } from './topic-incarnation.js';

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
  /** Topic IDs (default: read from the brokers); null: none, as from brokers before Kafka 2.8. */
  topicIds?: TopicIdSource | null;
}

/**
 * The consumer group loop. Per partition, messages are handled in offset order in chunks of at most
 * `maxBatchEvents`; a chunk's offset is committed only after all its purges (and dead-letter sends)
 * succeeded. A failing target therefore stalls the partition — backpressure — and nothing past the
 * failure is committed; after a crash the group replays from the last commit.
 */
export class ChangeConsumer {
  private consumer: Consumer;
  private joined = false;
  private readonly heartbeatMs: number;
  /** Tracing on: each event's record trace context is kept for its batch span's links. */
  private readonly tracing = activeTracer('@walpurge/invalidator') !== undefined;
  /** Partitions of the change topic this member holds (from the last group join; none while rebalancing). */
  private assigned: number[] = [];
  /** Per partition, from kafkajs's batch events (which also fire for batches of control records only). */
  private readonly lastBatchAt = new Map<number, number>();
  private readonly fetchedUpTo = new Map<number, bigint>();
  private readonly batchesInProgress = new Map<number, number>();
  /** Partitions this member has set a lag series for. */
  private readonly lagSeries = new Set<number>();
  private readonly admin: Admin;
  private readonly watchdog: StallWatchdog;
  private readonly gaps: ChangeLogGaps;
  private restarting: Promise<void> | undefined;
  private stopping = false;
  /** Aborted by stop(): cuts a restart's backoff short. */
  private readonly stopped = new AbortController();

  constructor(private readonly options: ChangeConsumerOptions) {
    const { sessionTimeoutMs } = options.invalidatorConfig;
    this.heartbeatMs = Math.min(3_000, Math.floor(sessionTimeoutMs / 3));
    this.admin = options.kafka.admin();
    this.watchdog = new StallWatchdog({
      admin: this.admin,
      groupId: options.kafkaConfig.consumerGroup,
      topic: options.kafkaConfig.topic,
      stallAfterMs: options.invalidatorConfig.stallTimeoutMs,
      assigned: () => this.assigned,
      lastBatchAt: (partition) => this.lastBatchAt.get(partition) ?? 0,
      fetchedUpTo: (partition) => this.fetchedUpTo.get(partition),
      busy: (partition) => (this.batchesInProgress.get(partition) ?? 0) > 0,
      onLag: (partition, lag) => this.setLag(partition, lag),
      onStall: (stalled) => this.restartStalled(stalled),
      logger: options.logger,
    });
    this.gaps = new ChangeLogGaps({
      admin: this.admin,
      groupId: options.kafkaConfig.consumerGroup,
      topic: options.kafkaConfig.topic,
      holds: 'changes',
      metrics: options.metrics,
      logger: options.logger,
      ...(options.topicIds !== null
        ? { topicIds: options.topicIds ?? new TopicIdReader(options.kafkaConfig) }
        : {}),
    });
    // After the watchdog and the gap check: the consumer's group events reset them.
    this.consumer = this.createConsumer();
  }

  private createConsumer(): Consumer {
    const { options } = this;
    const { sessionTimeoutMs } = options.invalidatorConfig;
    const consumer = options.kafka.consumer({
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
      metadataMaxAge: CONSUMER_METADATA_MAX_AGE_MS,
    });
    const { GROUP_JOIN, CRASH, STOP, DISCONNECT, REBALANCING, START_BATCH_PROCESS } = consumer.events;
    consumer.on(START_BATCH_PROCESS, (event) => {
      if (event.payload.topic !== options.kafkaConfig.topic) return;
      this.lastBatchAt.set(event.payload.partition, Date.now());
      this.fetchedUpTo.set(event.payload.partition, BigInt(event.payload.lastOffset) + 1n);
    });
    // Waiting in a rebalance fetches nothing, and may last: not a stall.
    consumer.on(REBALANCING, () => this.setAssigned([]));
    consumer.on(GROUP_JOIN, (event) => {
      this.joined = true;
      const held = event.payload.memberAssignment[options.kafkaConfig.topic] ?? [];
      this.setAssigned(held);
      this.dropLagOfOthers(held);
      options.logger.info(
        { memberId: event.payload.memberId, assignment: event.payload.memberAssignment },
        'joined the consumer group',
      );
    });
    consumer.on(CRASH, (event) => {
      this.left();
      options.logger.error({ err: event.payload.error, restart: event.payload.restart }, 'consumer crashed');
    });
    consumer.on(STOP, () => this.left());
    consumer.on(DISCONNECT, () => this.left());
    this.gaps.attach(consumer);
    return consumer;
  }

  private left(): void {
    this.joined = false;
    this.setAssigned([]);
  }

  private setAssigned(partitions: readonly number[]): void {
    this.assigned = [...partitions];
    this.fetchedUpTo.clear();
    this.watchdog.reset();
  }

  private setLag(partition: number, lag: number): void {
    // A reading begun before a rebalance must not bring back the series of a partition handed over.
    if (!this.assigned.includes(partition)) return;
    this.lagSeries.add(partition);
    this.options.metrics.consumerLag.set(
      { topic: this.options.kafkaConfig.topic, partition: String(partition) },
      lag,
    );
  }

  /**
   * A partition this member no longer holds is another member's to report: a series left behind
   * would show its last lag for ever (and keep a lag alert firing). Dropped at each group join.
   */
  private dropLagOfOthers(held: readonly number[]): void {
    for (const partition of this.lagSeries) {
      if (held.includes(partition)) continue;
      this.lagSeries.delete(partition);
      this.options.metrics.consumerLag.remove({
        topic: this.options.kafkaConfig.topic,
        partition: String(partition),
      });
    }
  }

  isReady(): boolean {
    return this.joined;
  }

  async start(): Promise<void> {
    await this.admin.connect();
    await this.run();
    this.watchdog.start();
    this.gaps.start();
  }

  private async run(): Promise<void> {
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

  /** Waits for the in-flight batch to finish and commit (kafkajs stops between batches), then leaves the group. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.stopped.abort();
    await this.watchdog.stop();
    await this.gaps.stop();
    // A restart blocked on brokers that are away must not hold the shutdown.
    const { stopTimeoutMs } = this.options.invalidatorConfig;
    if (this.restarting) await Promise.race([this.restarting, sleep(stopTimeoutMs).catch(() => undefined)]);
    await this.consumer.disconnect();
    await this.admin.disconnect();
  }

  /**
   * A stalled consumer is replaced by a new one: it leaves the group (committing nothing it did not
   * purge), and the new member joins, fetches its partitions' metadata afresh and resumes from the
   * committed offsets. Counted, and logged at error level: purges were late by the stall. Not
   * awaited by the watchdog, so a restart that takes long never holds a shutdown.
   */
  private restartStalled(stalled: Array<{ partition: number; lag: number; forMs: number }>): Promise<void> {
    if (this.stopping || this.restarting) return Promise.resolve();
    this.options.metrics.consumerStalls.inc({ topic: this.options.kafkaConfig.topic });
    this.options.logger.error(
      { stalled, stallTimeoutMs: this.options.invalidatorConfig.stallTimeoutMs },
      'the consumer stopped fetching partitions that have changes waiting: restarting it (purges of those changes were late)',
    );
    this.restarting = this.replaceConsumer().finally(() => (this.restarting = undefined));
    return Promise.resolve();
  }

  /** Until a new consumer runs or the process stops: a failed restart would leave no consumer at all. */
  private async replaceConsumer(): Promise<void> {
    const { sessionTimeoutMs } = this.options.invalidatorConfig;
    for (let attempt = 1; !this.stopping; attempt += 1) {
      try {
        // A runner stuck for good may never finish leaving: after a session timeout the group has
        // evicted it anyway (unless it still heartbeats), so the new member goes ahead.
        const left = await Promise.race([
          this.consumer.disconnect().then(() => true),
          sleep(sessionTimeoutMs, this.stopped.signal).then(() => false),
        ]);
        if (!left)
          this.options.logger.error(
            { sessionTimeoutMs },
            'the stalled consumer did not leave the group in time; starting a new one beside it',
          );
        if (this.stopping) return;
        this.consumer = this.createConsumer();
        await this.run();
        return;
      } catch (error) {
        if (this.stopping) return;
        this.options.logger.error(
          { err: error, attempt },
          'could not restart the stalled consumer; retrying',
        );
        await sleep(Math.min(5_000, 500 * attempt), this.stopped.signal).catch(() => undefined);
      }
    }
  }

  private async eachBatch(payload: EachBatchPayload): Promise<void> {
    const { batch, resolveOffset, heartbeat, isRunning, isStale } = payload;
    const { purgeSignal, logger } = this.options;
    // The committed offsets of this join are compared with the first batch: read before any commit.
    await this.gaps.ready();
    // The start of a re-created topic, committed before anything there is purged (ChangeLogGaps).
    const rewind = this.gaps.pendingRewind(batch.partition);
    if (rewind !== undefined) {
      await commitBatchOffset(payload, rewind);
      this.gaps.rewindCommitted(batch.partition);
    }
    this.batchesInProgress.set(batch.partition, (this.batchesInProgress.get(batch.partition) ?? 0) + 1);
    // Purges may be retried for a long time while a target is down: keep the group membership alive.
    const beat = setInterval(() => heartbeat().catch(() => undefined), this.heartbeatMs);
    try {
      for (const messages of chunk(batch.messages, this.options.invalidatorConfig.maxBatchEvents)) {
        if (!isRunning() || isStale()) return;
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
        // Sought elsewhere meanwhile (a re-created topic read from its start): commit nothing of this batch.
        if (isStale()) return;
        await commitBatchOffset(payload, next);
        this.gaps.committedUpTo(batch.partition, BigInt(next));
        // Resolved only once committed: a commit that fails (and is not a rebalance) makes kafkajs
        // fetch again from the resolved offset, so this chunk is delivered, purged and committed again.
        resolveOffset(last);
        const lag = BigInt(batch.highWatermark) - BigInt(next);
        this.setLag(batch.partition, Number(lag > 0n ? lag : 0n));
        logger.debug({ partition: batch.partition, offset: next, events: events.length }, 'committed');
        await heartbeat().catch(() => undefined);
      }
    } finally {
      clearInterval(beat);
      this.batchesInProgress.set(batch.partition, (this.batchesInProgress.get(batch.partition) ?? 1) - 1);
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
