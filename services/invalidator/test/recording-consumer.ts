import type { Kafka } from 'kafkajs';
import type { WalpurgeConfig } from '@walpurge/config';
import { createMetricsRegistry } from '@walpurge/core';
import type { ChangeEvent } from '@walpurge/protocol';
import { waitFor } from '@walpurge/testing';
import { ChangeConsumer } from '../src/kafka/change-consumer.js';
import type { DeadLetterQueue } from '../src/kafka/dead-letter.js';
import { createInvalidatorMetrics } from '../src/metrics.js';
import { Coalescer } from '../src/pipeline/coalescer.js';
import { logger } from './harness.js';

export interface RecordingConsumerOptions {
  /** Awaited before each purge: a purge target that is down holds the partition behind it. */
  beforePurge?: () => Promise<void>;
  /** null: no topic IDs (as from brokers before Kafka 2.8). */
  topicIds?: null;
}

/**
 * A ChangeConsumer of `config`'s topic and group whose purges record the key id of each event (in
 * purge order, repeats included), started and joined. For the consumer's own tests: no Redis.
 */
export async function startRecordingConsumer(
  kafka: Kafka,
  config: WalpurgeConfig,
  options: RecordingConsumerOptions = {},
) {
  if (!config.kafka) throw new Error('a kafka-transport config is needed');
  const registry = createMetricsRegistry({ defaultMetrics: false });
  const handled: unknown[] = [];
  const record = async (events: readonly ChangeEvent[]): Promise<void> => {
    await options.beforePurge?.();
    for (const event of events) handled.push(event.key?.['id']);
  };
  const consumer = new ChangeConsumer({
    kafka,
    kafkaConfig: config.kafka,
    invalidatorConfig: config.invalidator,
    coalescer: new Coalescer(record, 0, 1000),
    handleEvents: record,
    deadLetters: {} as DeadLetterQueue,
    metrics: createInvalidatorMetrics(registry),
    logger,
    purgeSignal: new AbortController().signal,
    ...(options.topicIds === null ? { topicIds: null } : {}),
  });
  await consumer.start();
  await waitFor('the consumer to join its group', async () => consumer.isReady(), { timeoutMs: 30_000 });
  return { registry, handled, consumer };
}
