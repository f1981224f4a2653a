import type { Consumer } from 'kafkajs';
import type { KafkaConfig } from '@walpurge/config';
import type { Logger } from '@walpurge/core';
import { CONSUMER_METADATA_MAX_AGE_MS, createKafka, ensureTopics, type KafkaClient } from '@walpurge/kafka';
import { decodeAnyChangeEvent, type ChangeEvent } from '@walpurge/protocol';
import type { InspectMetrics } from '../metrics.js';

/**
 * The change topic read with the observer's own consumer group (inspect.consumerGroup): its offsets
 * never move the invalidator's. Offsets are committed as read: the observer keeps nothing durable,
 * and after a restart it checks what comes next instead of replaying old commits, whose timescales
 * have passed. A new group starts at the end, for the same reason (`inspect --once` reads the past).
 */
export class KafkaSource {
  private readonly kafka: KafkaClient;
  private readonly consumer: Consumer;
  private joined = false;

  constructor(
    private readonly options: {
      kafka: KafkaConfig;
      groupId: string;
      offer: (events: readonly ChangeEvent[]) => void;
      metrics: InspectMetrics;
      logger: Logger;
    },
  ) {
    this.kafka = createKafka(options.kafka, { clientSuffix: 'inspector', logger: options.logger });
    this.consumer = this.kafka.consumer({
      groupId: options.groupId,
      maxWaitTimeInMs: 1_000,
      // A restarted broker answering for partitions it no longer leads would hold the checks.
      metadataMaxAge: CONSUMER_METADATA_MAX_AGE_MS,
    });
    const { GROUP_JOIN, CRASH, STOP, DISCONNECT } = this.consumer.events;
    this.consumer.on(GROUP_JOIN, () => (this.joined = true));
    this.consumer.on(CRASH, (event) => {
      this.joined = false;
      options.logger.error({ err: event.payload.error }, 'inspect: consumer crashed');
    });
    this.consumer.on(STOP, () => (this.joined = false));
    this.consumer.on(DISCONNECT, () => (this.joined = false));
  }

  isReady(): boolean {
    return this.joined;
  }

  async start(): Promise<void> {
    // Role 'inspector' may start before the listener created the topic: created the one way walpurge does.
    await ensureTopics(this.kafka, this.options.kafka, { logger: this.options.logger, topics: ['changes'] });
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: this.options.kafka.topic, fromBeginning: false });
    await this.consumer.run({
      eachBatch: async ({ batch }) => {
        this.options.offer(decodeMessages(batch.messages, this.options.metrics));
      },
    });
  }

  async stop(): Promise<void> {
    await this.consumer.disconnect();
  }
}

/** Undecodable records are the invalidator's to dead-letter: here they are counted and skipped. */
export function decodeMessages(
  messages: ReadonlyArray<{ value: Buffer | null; key: Buffer | null }>,
  metrics: InspectMetrics,
): ChangeEvent[] {
  const events: ChangeEvent[] = [];
  for (const message of messages) {
    try {
      const event = decodeAnyChangeEvent(message.value, message.key);
      if (event) events.push(event);
    } catch {
      metrics.errors.inc({ target: 'decode' });
    }
  }
  return events;
}
