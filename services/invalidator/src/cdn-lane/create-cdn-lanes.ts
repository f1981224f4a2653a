import type { Kafka, Producer } from 'kafkajs';
import type { CdnConfig, DatabaseSslConfig, InvalidatorConfig } from '@walpurge/config';
import type { BackoffOptions, Logger, Registry } from '@walpurge/core';
import type { CompiledRules } from '@walpurge/rules';
import type { DeadLetterSink } from '../dead-letter/dead-letter-sink.js';
import type { DeadLetterQueue } from '../kafka/dead-letter.js';
import type { TopicIdSource } from '../kafka/topic-incarnation.js';
import type { InvalidatorMetrics } from '../metrics.js';
import type { Purger } from '../targets/purger.js';
import type { CdnEnqueuer } from './cdn-queue.js';
import { KafkaCdnLane } from './kafka-cdn-lane.js';
import { KafkaCdnQueue } from './kafka-cdn-queue.js';
import { LaneBatch } from './lane-batch.js';
import { createCdnLaneMetrics } from './lane-metrics.js';
import { PostgresCdnLane } from './postgres-cdn-lane.js';
import { PostgresCdnQueue } from './postgres-cdn-queue.js';

export type CdnQueueLocation =
  | {
      kind: 'kafka';
      kafka: Kafka;
      producer: Producer;
      topic: string;
      consumerGroup: string;
      /** kafka.maxMessageBytes: each send to the CDN topic stays within it. */
      maxMessageBytes: number;
      /** Where a CDN topic record that is not a change event goes (reason undecodable). */
      deadLetterTopic: DeadLetterQueue;
      /** One reader of the CDN topic's ID per lane (a re-created topic is read from its start). */
      topicIds?: () => TopicIdSource;
    }
  | { kind: 'table'; url: string; ssl?: DatabaseSslConfig | undefined; table: string };

export interface CdnLanesOptions {
  queue: CdnQueueLocation;
  /** The CDN purgers: one lane each. */
  providers: readonly Purger[];
  /** false: only enqueue (another process's lanes drain the queue). */
  runLanes: boolean;
  rules: CompiledRules;
  cdn: Pick<CdnConfig, 'coalesceWindowMs' | 'maxEntriesPerBatch' | 'maxUnclassifiedAttempts'>;
  invalidator: Pick<InvalidatorConfig, 'sessionTimeoutMs'>;
  deadLetters: DeadLetterSink;
  registry: Registry;
  invalidatorMetrics: InvalidatorMetrics;
  logger: Logger;
  backoff: BackoffOptions;
}

export interface CdnLanes {
  enqueuer: CdnEnqueuer;
  start(): Promise<void>;
  /** Lanes stop taking entries and get `timeoutMs` to finish their call in flight (else it is replayed later). */
  stop(timeoutMs: number): Promise<void>;
}

/** The CDN queue of the transport and, unless `runLanes` is false, one lane per CDN provider reading it. */
export function createCdnLanes(options: CdnLanesOptions): CdnLanes {
  const { queue, providers, cdn, logger } = options;
  const metrics = createCdnLaneMetrics(options.registry);
  const batchOf = (purger: Purger): LaneBatch =>
    new LaneBatch({
      purger,
      rules: options.rules,
      deadLetters: options.deadLetters,
      metrics,
      invalidatorMetrics: options.invalidatorMetrics,
      logger: logger.child({ component: 'cdn-lane', target: purger.name }),
      backoff: options.backoff,
      maxUnclassifiedAttempts: cdn.maxUnclassifiedAttempts,
    });
  const laneSettings = {
    metrics,
    coalesceWindowMs: cdn.coalesceWindowMs,
    maxEntriesPerBatch: cdn.maxEntriesPerBatch,
  };
  if (queue.kind === 'kafka') {
    const lanes = options.runLanes
      ? providers.map(
          (purger) =>
            new KafkaCdnLane({
              ...laneSettings,
              kafka: queue.kafka,
              topic: queue.topic,
              groupId: `${queue.consumerGroup}-cdn-${purger.name}`,
              provider: purger.name,
              batch: batchOf(purger),
              deadLetterTopic: queue.deadLetterTopic,
              logger: logger.child({ component: 'cdn-lane', target: purger.name }),
              sessionTimeoutMs: options.invalidator.sessionTimeoutMs,
              ...(queue.topicIds ? { topicIds: queue.topicIds() } : {}),
            }),
        )
      : [];
    return {
      enqueuer: new KafkaCdnQueue({
        producer: queue.producer,
        topic: queue.topic,
        maxMessageBytes: queue.maxMessageBytes,
        logger,
        backoff: options.backoff,
      }),
      start: async () => {
        await Promise.all(lanes.map((lane) => lane.start()));
      },
      stop: async (timeoutMs) => {
        await Promise.all(lanes.map((lane) => lane.stop(timeoutMs)));
      },
    };
  }
  const table = new PostgresCdnQueue({
    url: queue.url,
    ssl: queue.ssl,
    table: queue.table,
    rules: options.rules,
    providers,
    logger,
    backoff: options.backoff,
  });
  const lanes = options.runLanes
    ? providers.map(
        (purger) =>
          new PostgresCdnLane({
            ...laneSettings,
            provider: purger.name,
            queue: table,
            batch: batchOf(purger),
            logger: logger.child({ component: 'cdn-lane', target: purger.name }),
            backoff: options.backoff,
          }),
      )
    : [];
  return {
    enqueuer: table,
    start: async () => {
      if (await table.ensureTable()) logger.info({ table: queue.table }, 'created the CDN queue table');
      for (const lane of lanes) lane.start();
    },
    stop: async (timeoutMs) => {
      await Promise.all(lanes.map((lane) => lane.stop(timeoutMs)));
      await table.close();
    },
  };
}
