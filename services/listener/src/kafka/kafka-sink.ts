import kafkajs, { type Message, type Producer } from 'kafkajs';
import type { KafkaConfig } from '@walpurge/config';
import { ErrorCode, WalpurgeError, errorMessage, type Logger, type Registry } from '@walpurge/core';
import {
  encodeChangeEvent,
  messageKey,
  qualifiedTable,
  type ChangeEvent,
  type ChangeSink,
} from '@walpurge/protocol';
import { createKafkaSinkMetrics, type KafkaSinkMetrics } from '../metrics.js';
import { createKafkaClient } from './kafka-client.js';

const { Partitioners } = kafkajs;

export interface KafkaSinkOptions {
  config: KafkaConfig;
  logger: Logger;
  registry?: Registry;
  /** Most messages per produce call (several publish calls are batched together up to this). */
  maxBatchMessages?: number;
}

/** A ChangeSink whose overlapping `publish` calls become durable in call order. */
export interface KafkaSink extends ChangeSink {
  readonly preservesCallOrder: true;
  /** Creates the topic when missing and connects the producer; idempotent, retried by callers. */
  connect(): Promise<void>;
  close(): Promise<void>;
}

interface Pending {
  messages: Message[];
  bytes: number;
  resolve(): void;
  reject(error: unknown): void;
}

export function toKafkaMessage(event: ChangeEvent): Message {
  return {
    key: messageKey(event),
    value: encodeChangeEvent(event),
    headers: { table: qualifiedTable(event), op: event.op, lsn: event.source.lsn },
    timestamp: String(Date.parse(event.source.commitTs)),
  };
}

/**
 * Publishes change events to Kafka with an idempotent producer (acks from all in-sync replicas,
 * one request in flight, so retries can neither duplicate nor reorder). Publish calls are queued and
 * sent one produce request at a time, several calls batched into one request: per-row order holds
 * across calls, and a call resolves only once Kafka acknowledged every one of its messages.
 * A failed request rejects it and everything queued behind it, so nothing after a gap is written
 * before the listener replays from its last durable position.
 */
export function createKafkaSink(options: KafkaSinkOptions): KafkaSink {
  const { config } = options;
  const logger = options.logger.child({ component: 'kafka-sink' });
  const metrics: KafkaSinkMetrics | undefined = options.registry
    ? createKafkaSinkMetrics(options.registry)
    : undefined;
  const maxBatch = options.maxBatchMessages ?? 5000;
  const kafka = createKafkaClient(config, logger);
  const queue: Pending[] = [];
  let producer: Producer | undefined;
  let connecting: Promise<Producer> | undefined;
  let topicReady = false;
  let sending = false;
  let closed = false;

  async function ensureTopic(): Promise<void> {
    if (topicReady) return;
    const admin = kafka.admin();
    await admin.connect();
    try {
      const topics = await admin.listTopics();
      if (!topics.includes(config.topic)) {
        const created = await admin.createTopics({
          topics: [
            {
              topic: config.topic,
              numPartitions: config.partitions,
              replicationFactor: config.replicationFactor,
            },
          ],
          waitForLeaders: true,
        });
        if (created)
          logger.info(
            {
              topic: config.topic,
              partitions: config.partitions,
              replicationFactor: config.replicationFactor,
            },
            'created Kafka topic',
          );
      }
      topicReady = true;
    } finally {
      await admin.disconnect().catch(() => {});
    }
  }

  async function openProducer(): Promise<Producer> {
    try {
      await ensureTopic();
      const created = kafka.producer({
        idempotent: true,
        maxInFlightRequests: 1,
        allowAutoTopicCreation: false,
        createPartitioner: Partitioners.DefaultPartitioner,
        retry: { retries: 8 },
      });
      await created.connect();
      producer = created;
      return created;
    } catch (error) {
      throw new WalpurgeError(
        ErrorCode.KafkaUnavailable,
        `cannot connect to Kafka (${config.brokers.join(', ')}): ${errorMessage(error)}`,
        {
          retriable: true,
          hint: 'check kafka.brokers and that the brokers are up; walpurge keeps retrying and holds the replication slot meanwhile',
          cause: error,
        },
      );
    }
  }

  function getProducer(): Promise<Producer> {
    if (producer) return Promise.resolve(producer);
    connecting ??= openProducer().finally(() => {
      connecting = undefined;
    });
    return connecting;
  }

  /** After a failed request the idempotent producer's sequence state is suspect: start a fresh one. */
  async function dropProducer(): Promise<void> {
    const old = producer;
    producer = undefined;
    await old?.disconnect().catch(() => {});
  }

  async function pump(): Promise<void> {
    if (sending) return;
    sending = true;
    try {
      while (queue.length > 0) {
        const batch: Pending[] = [];
        let count = 0;
        while (
          queue.length > 0 &&
          (batch.length === 0 || count + (queue[0] as Pending).messages.length <= maxBatch)
        ) {
          const next = queue.shift() as Pending;
          batch.push(next);
          count += next.messages.length;
        }
        const began = performance.now();
        try {
          const active = await getProducer();
          await active.send({ topic: config.topic, acks: -1, messages: batch.flatMap((p) => p.messages) });
          metrics?.sendSeconds.observe((performance.now() - began) / 1000);
          metrics?.messages.inc(count);
          metrics?.bytes.inc(batch.reduce((sum, p) => sum + p.bytes, 0));
          for (const pending of batch) pending.resolve();
        } catch (error) {
          metrics?.errors.inc();
          const failed = [...batch, ...queue.splice(0)];
          const wrapped =
            error instanceof WalpurgeError
              ? error
              : new WalpurgeError(
                  ErrorCode.KafkaUnavailable,
                  `Kafka did not acknowledge ${count} change events: ${errorMessage(error)}`,
                  {
                    retriable: true,
                    cause: error,
                  },
                );
          logger.warn({ err: wrapped, events: count }, 'publishing to Kafka failed');
          await dropProducer();
          for (const pending of failed) pending.reject(wrapped);
        }
      }
    } finally {
      sending = false;
    }
  }

  return {
    preservesCallOrder: true,
    async connect() {
      if (closed) throw new WalpurgeError(ErrorCode.Aborted, 'Kafka sink is closed');
      await getProducer();
    },
    publish(events, signal) {
      if (events.length === 0) return Promise.resolve();
      if (closed)
        return Promise.reject(
          new WalpurgeError(ErrorCode.Aborted, 'Kafka sink is closed', { retriable: true }),
        );
      return new Promise<void>((resolve, reject) => {
        const messages = events.map(toKafkaMessage);
        // Not sent yet when the caller gives up: withdraw it (once sent, Kafka decides).
        const onAbort = (): void => {
          const index = queue.indexOf(pending);
          if (index >= 0) {
            queue.splice(index, 1);
            pending.reject(new WalpurgeError(ErrorCode.Aborted, 'publish aborted', { retriable: true }));
          }
        };
        const pending: Pending = {
          messages,
          bytes: messages.reduce((sum, m) => sum + (m.value as Buffer).length, 0),
          resolve: () => {
            signal?.removeEventListener('abort', onAbort);
            resolve();
          },
          reject: (error) => {
            signal?.removeEventListener('abort', onAbort);
            reject(error);
          },
        };
        queue.push(pending);
        signal?.addEventListener('abort', onAbort, { once: true });
        void pump();
      });
    },
    async close() {
      closed = true;
      for (const pending of queue.splice(0))
        pending.reject(new WalpurgeError(ErrorCode.Aborted, 'Kafka sink closed', { retriable: true }));
      await connecting?.catch(() => undefined);
      await dropProducer();
    },
  };
}
