import type { Consumer, EachBatchPayload, Kafka, KafkaMessage } from 'kafkajs';
import type { Logger } from '@walpurge/core';
import { decodeChangeEventV1 } from '@walpurge/protocol';
import { chunk } from '../targets/redis/slot-groups.js';
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
  metrics: CdnLaneMetrics;
  logger: Logger;
  coalesceWindowMs: number;
  maxEntriesPerBatch: number;
  sessionTimeoutMs: number;
}

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
  /** Timestamp of the oldest message of the batch in flight, for the age gauge while it is blocked. */
  private inFlightSince: number | undefined;
  private ageTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: KafkaCdnLaneOptions) {
    this.heartbeatMs = Math.min(3_000, Math.floor(options.sessionTimeoutMs / 3));
    this.consumer = options.kafka.consumer({
      groupId: options.groupId,
      sessionTimeout: options.sessionTimeoutMs,
      heartbeatInterval: this.heartbeatMs,
      minBytes: COALESCE_MIN_BYTES,
      maxWaitTimeInMs: Math.max(100, options.coalesceWindowMs),
      retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 300, maxRetryTime: 10_000 },
    });
    this.consumer.on(this.consumer.events.CRASH, (event) =>
      options.logger.error(
        { err: event.payload.error, target: options.provider },
        'CDN lane consumer crashed',
      ),
    );
  }

  async start(): Promise<void> {
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: this.options.topic, fromBeginning: true });
    this.ageTimer = setInterval(() => this.refreshAge(), 1_000);
    this.ageTimer.unref();
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      eachBatch: (payload) => this.eachBatch(payload),
    });
  }

  /** Stops taking entries; the call in flight may finish within `timeoutMs`, else it is abandoned uncommitted. */
  async stop(timeoutMs: number): Promise<void> {
    const deadline = setTimeout(() => this.abort.abort(), timeoutMs);
    try {
      await this.consumer.disconnect();
    } finally {
      clearTimeout(deadline);
      clearInterval(this.ageTimer);
      this.abort.abort();
    }
  }

  private refreshAge(): void {
    const { metrics, provider } = this.options;
    if (this.inFlightSince !== undefined)
      metrics.oldestAge.set({ provider }, Math.max(0, Date.now() - this.inFlightSince) / 1000);
  }

  private async eachBatch({
    batch,
    resolveOffset,
    heartbeat,
    isRunning,
    isStale,
  }: EachBatchPayload): Promise<void> {
    const { provider, metrics, logger } = this.options;
    const signal = this.abort.signal;
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
            entries.push({
              id: message.offset,
              event: decodeChangeEventV1(message.value ?? ''),
              enqueuedAt: Number(message.timestamp),
              record: { topic: batch.topic, partition: batch.partition, message },
            });
          } catch (error) {
            metrics.entries.inc({ provider, outcome: 'undecodable' });
            logger.error(
              { target: provider, offset: message.offset, err: error },
              'a CDN queue message is not a change event: skipped without purging',
            );
          }
        }
        await this.options.batch.run(entries, signal);
        const last = (messages[messages.length - 1] as KafkaMessage).offset;
        resolveOffset(last);
        const next = BigInt(last) + 1n;
        await this.consumer.commitOffsets([
          { topic: batch.topic, partition: batch.partition, offset: next.toString() },
        ]);
        const lag = BigInt(batch.highWatermark) - next;
        metrics.depth.set({ provider }, Number(lag > 0n ? lag : 0n));
        this.inFlightSince = undefined;
        if (lag <= 0n) metrics.oldestAge.set({ provider }, 0);
        await heartbeat().catch(() => undefined);
      }
    } finally {
      clearInterval(beat);
    }
  }
}
