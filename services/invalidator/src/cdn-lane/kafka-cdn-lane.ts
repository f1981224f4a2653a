import type { Admin, Consumer, EachBatchPayload, Kafka, KafkaMessage } from 'kafkajs';
import { activeTracer, type Logger } from '@walpurge/core';
import { CONSUMER_METADATA_MAX_AGE_MS, commitBatchOffset } from '@walpurge/kafka';
import { decodeChangeEventV1 } from '@walpurge/protocol';
import { ChangeLogGaps } from '../kafka/change-log-gaps.js';
import type { TopicIdSource } from '../kafka/topic-incarnation.js';
import type { DeadLetterQueue } from '../kafka/dead-letter.js';
import { chunk } from '../targets/redis/slot-groups.js';
import { rememberOrigin } from '../tracing/batch-links.js';
import type { CdnQueueEntry } from './cdn-queue.js';
import type { LaneBatch } from './lane-batch.js';
import type { CdnLaneMetrics } from './lane-metrics.js';

export interface KafkaCdnLaneOptions {
  kafka: Kafka;
  topic: string;
  /** `<kafka.consumerGroup>-cdn-<provider>`: each provider reads the whole topic at its own pace. */
  groupId: string;
  provider: string;
  batch: LaneBatch;
  /** The dead-letter topic: a CDN topic record that is not a change event goes there unchanged. */
  deadLetterTopic: DeadLetterQueue;
  metrics: CdnLaneMetrics;
  logger: Logger;
  coalesceWindowMs: number;
  maxEntriesPerBatch: number;
  sessionTimeoutMs: number;
  /** The CDN topic's ID, to find it re-created under the lane (see ChangeLogGaps). */
  topicIds?: TopicIdSource;
}

/** How often depth and age are computed from the group's committed offset, whatever the consumer does. */
const GAUGE_INTERVAL_MS = 5_000;

/** Ask the broker to hold a fetch until this much is there, or the coalescing window passed. */
const COALESCE_MIN_BYTES = 64 * 1024 * 1024;

/**
 * One provider's lane over the CDN topic (one partition, so one consumer of the group paces the
 * provider account's API limit). Fetches wait out the coalescing window on the broker (minBytes /
 * maxWaitTimeInMs), so a hot row changed many times in a window costs one call. Offsets are
 * committed only after the entries were purged or dead-lettered: a crash replays them.
 */
export class KafkaCdnLane {
  private readonly consumer: Consumer;
  private readonly abort = new AbortController();
  private readonly heartbeatMs: number;
  /** Tracing on: each entry's record trace context is kept for the lane batch span's links. */
  private readonly tracing = activeTracer('@walpurge/invalidator') !== undefined;
  /** Timestamp of the oldest message of the batch in flight, for the age gauge while it is blocked. */
  private inFlightSince: number | undefined;
  /** When the group's lag was first seen above 0 (cleared when it is 0): the age when nothing is in flight. */
  private lagSince: number | undefined;
  private ageTimer: NodeJS.Timeout | undefined;
  private lagTimer: NodeJS.Timeout | undefined;
  private readonly admin: Admin;
  private adminConnected = false;
  private readonly gaps: ChangeLogGaps;
  private measuring = false;

  constructor(private readonly options: KafkaCdnLaneOptions) {
    this.heartbeatMs = Math.min(3_000, Math.floor(options.sessionTimeoutMs / 3));
    this.consumer = options.kafka.consumer({
      groupId: options.groupId,
      sessionTimeout: options.sessionTimeoutMs,
      heartbeatInterval: this.heartbeatMs,
      minBytes: COALESCE_MIN_BYTES,
      maxWaitTimeInMs: Math.max(100, options.coalesceWindowMs),
      retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 300, maxRetryTime: 10_000 },
      // A restarted broker answering for partitions it no longer leads would hold CDN purges.
      metadataMaxAge: CONSUMER_METADATA_MAX_AGE_MS,
    });
    this.admin = options.kafka.admin();
    // Queued purges removed from the topic unread (a finite retention outlasted by an outage).
    this.gaps = new ChangeLogGaps({
      admin: this.admin,
      groupId: options.groupId,
      topic: options.topic,
      holds: `CDN purges for ${options.provider}`,
      metrics: options.metrics,
      logger: options.logger,
      ...(options.topicIds ? { topicIds: options.topicIds } : {}),
    });
    this.gaps.attach(this.consumer);
    this.consumer.on(this.consumer.events.CRASH, (event) =>
      options.logger.error(
        { err: event.payload.error, target: options.provider },
        'CDN lane consumer crashed',
      ),
    );
  }

  async start(): Promise<void> {
    // First, so a lane that never fetches (group ACL missing, crash loop, another member holding
    // the partition) still shows its backlog and WalpurgeCdnQueueLagging can fire.
    this.lagTimer = setInterval(() => void this.measureLag(), GAUGE_INTERVAL_MS);
    this.lagTimer.unref();
    // Awaited (it never throws): it connects the admin client, which the gap check needs at the join.
    await this.measureLag();
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: this.options.topic, fromBeginning: true });
    this.ageTimer = setInterval(() => this.refreshAge(), 1_000);
    this.ageTimer.unref();
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      eachBatch: (payload) => this.eachBatch(payload),
    });
    this.gaps.start();
  }

  /** Stops taking entries; the call in flight may finish within `timeoutMs`, else it is abandoned uncommitted. */
  async stop(timeoutMs: number): Promise<void> {
    const deadline = setTimeout(() => this.abort.abort(), timeoutMs);
    try {
      await this.gaps.stop();
      await this.consumer.disconnect();
    } finally {
      clearTimeout(deadline);
      clearInterval(this.ageTimer);
      clearInterval(this.lagTimer);
      this.abort.abort();
      if (this.adminConnected) await this.admin.disconnect().catch(() => undefined);
    }
  }

  private refreshAge(): void {
    const { metrics, provider } = this.options;
    const since = this.inFlightSince ?? this.lagSince;
    if (since !== undefined) metrics.oldestAge.set({ provider }, Math.max(0, Date.now() - since) / 1000);
  }

  /**
   * Depth = end of the CDN topic minus the group's committed offset (its start when it never
   * committed), read with the admin client so it does not depend on this consumer fetching. The age
   * runs from when that lag was first seen (the batch in flight's own timestamp is more precise and
   * wins while there is one); it is 0 once the lag is.
   */
  private async measureLag(): Promise<void> {
    if (this.measuring) return;
    this.measuring = true;
    const { topic, groupId, provider, metrics } = this.options;
    try {
      if (!this.adminConnected) {
        await this.admin.connect();
        this.adminConnected = true;
      }
      const [ends, [group]] = await Promise.all([
        this.admin.fetchTopicOffsets(topic),
        this.admin.fetchOffsets({ groupId, topics: [topic] }),
      ]);
      let lag = 0n;
      for (const end of ends) {
        const committed = group?.partitions.find((p) => p.partition === end.partition)?.offset ?? '-1';
        const from = BigInt(committed) >= 0n ? BigInt(committed) : BigInt(end.low);
        if (BigInt(end.high) > from) lag += BigInt(end.high) - from;
      }
      metrics.depth.set({ provider }, Number(lag));
      if (lag === 0n) {
        this.lagSince = undefined;
        if (this.inFlightSince === undefined) metrics.oldestAge.set({ provider }, 0);
      } else {
        this.lagSince ??= Date.now();
        this.refreshAge();
      }
    } catch (error) {
      // Kept as last seen: the lane's consumer logs Kafka outages itself.
      this.options.logger.debug({ err: error, target: provider }, 'cannot measure the CDN lane lag');
    } finally {
      this.measuring = false;
    }
  }

  private async eachBatch(payload: EachBatchPayload): Promise<void> {
    const { batch, resolveOffset, heartbeat, isRunning, isStale } = payload;
    const { provider, metrics, logger } = this.options;
    const signal = this.abort.signal;
    // The committed offsets of this join are compared with the first batch: read before any commit.
    await this.gaps.ready();
    // The start of a re-created topic, committed before anything there is purged (ChangeLogGaps).
    const rewind = this.gaps.pendingRewind(batch.partition);
    if (rewind !== undefined) {
      await commitBatchOffset(payload, rewind);
      this.gaps.rewindCommitted(batch.partition);
    }
    const beat = setInterval(() => heartbeat().catch(() => undefined), this.heartbeatMs);
    try {
      for (const messages of chunk(batch.messages, this.options.maxEntriesPerBatch)) {
        if (!isRunning() || isStale()) return;
        const firstMessage = messages[0] as KafkaMessage;
        this.inFlightSince = Number(firstMessage.timestamp);
        metrics.depth.set(
          { provider },
          Math.max(0, Number(BigInt(batch.highWatermark) - BigInt(firstMessage.offset))),
        );
        this.refreshAge();
        const entries: CdnQueueEntry[] = [];
        for (const message of messages) {
          try {
            const event = decodeChangeEventV1(message.value ?? '');
            if (this.tracing) rememberOrigin(event, message.headers);
            entries.push({
              id: message.offset,
              event,
              enqueuedAt: Number(message.timestamp),
              record: { topic: batch.topic, partition: batch.partition, message },
            });
          } catch (error) {
            // Like the change consumer's undecodable messages: kept for inspection, not dropped.
            await this.options.deadLetterTopic.send(
              { topic: batch.topic, partition: batch.partition },
              message,
              error,
              'undecodable',
              signal,
            );
            metrics.entries.inc({ provider, outcome: 'undecodable' });
            logger.error(
              { target: provider, offset: message.offset, err: error },
              'a CDN queue message is not a change event: dead-lettered without purging',
            );
          }
        }
        await this.options.batch.run(entries, signal);
        const last = (messages[messages.length - 1] as KafkaMessage).offset;
        const next = BigInt(last) + 1n;
        // Sought elsewhere meanwhile (a re-created topic read from its start): commit nothing of this batch.
        if (isStale()) return;
        await commitBatchOffset(payload, next);
        this.gaps.committedUpTo(batch.partition, next);
        // Resolved only once committed: a commit that fails (and is not a rebalance) makes kafkajs
        // fetch again from the resolved offset, so this chunk is delivered, purged and committed again.
        resolveOffset(last);
        const lag = BigInt(batch.highWatermark) - next;
        metrics.depth.set({ provider }, Number(lag > 0n ? lag : 0n));
        this.inFlightSince = undefined;
        if (lag <= 0n) {
          this.lagSince = undefined;
          metrics.oldestAge.set({ provider }, 0);
        }
        await heartbeat().catch(() => undefined);
      }
    } finally {
      clearInterval(beat);
      // Also after a failed commit (a rebalance moved the partition mid-purge): this process no
      // longer holds these entries, so its age gauge must not keep growing from them.
      this.inFlightSince = undefined;
    }
  }
}
