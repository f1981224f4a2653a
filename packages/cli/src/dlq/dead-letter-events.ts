import { randomUUID } from 'node:crypto';
import type { KafkaConfig } from '@walpurge/config';
import type { IHeaders } from 'kafkajs';
import { kafkaClient } from '../status/kafka-status.js';
import { connectKafka } from '../live/connection-errors.js';

export interface DeadLetterEvent {
  partition: number;
  offset: string;
  timestamp: string;
  key: string | null;
  headers: Record<string, string>;
  value: string;
  /** Raw parts, to produce the message again unchanged. */
  raw: { key: Buffer | null; value: Buffer | null; headers: IHeaders };
}

function headerText(headers: IHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (value === undefined) continue;
    out[name] = Array.isArray(value) ? value.map(String).join(',') : String(value);
  }
  return out;
}

/**
 * Reads the dead-letter topic from its start up to the high watermarks seen at the beginning, with
 * a throwaway consumer group that commits nothing and is deleted afterwards.
 */
export async function readDeadLetterTopic(config: KafkaConfig, limit: number): Promise<DeadLetterEvent[]> {
  const kafka = kafkaClient(config, 'dlq');
  const admin = kafka.admin();
  await connectKafka(admin, config.brokers);
  const groupId = `walpurge-dlq-cli-${randomUUID()}`;
  try {
    if (!(await admin.listTopics()).includes(config.deadLetterTopic)) return [];
    const offsets = await admin.fetchTopicOffsets(config.deadLetterTopic);
    const remaining = new Map(
      offsets.filter((p) => BigInt(p.high) > BigInt(p.low)).map((p) => [p.partition, BigInt(p.high)]),
    );
    if (remaining.size === 0) return [];
    const consumer = kafka.consumer({ groupId, allowAutoTopicCreation: false });
    const events: DeadLetterEvent[] = [];
    await consumer.connect();
    try {
      await consumer.subscribe({ topic: config.deadLetterTopic, fromBeginning: true });
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`timed out reading ${config.deadLetterTopic}`)),
          30_000,
        );
        consumer
          .run({
            autoCommit: false,
            eachMessage: async ({ partition, message }) => {
              const end = remaining.get(partition);
              if (end === undefined) return;
              if (events.length < limit) {
                events.push({
                  partition,
                  offset: message.offset,
                  timestamp: new Date(Number(message.timestamp)).toISOString(),
                  key: message.key?.toString('utf8') ?? null,
                  headers: headerText(message.headers),
                  value: message.value?.toString('utf8') ?? '',
                  raw: { key: message.key, value: message.value, headers: message.headers ?? {} },
                });
              }
              if (BigInt(message.offset) + 1n >= end) remaining.delete(partition);
              if (remaining.size === 0 || events.length >= limit) {
                clearTimeout(timer);
                resolve();
              }
            },
          })
          .catch(reject);
      });
    } finally {
      await consumer.disconnect().catch(() => {});
    }
    return events;
  } finally {
    await admin.deleteGroups([groupId]).catch(() => {});
    await admin.disconnect().catch(() => {});
  }
}

export async function listDeadLetterEvents(
  config: KafkaConfig,
  limit: number,
): Promise<Array<Omit<DeadLetterEvent, 'raw'>>> {
  return (await readDeadLetterTopic(config, limit)).map(({ raw: _raw, ...event }) => event);
}

/** Copies every dead letter back to the change topic, same key (so same partition and order) and headers. */
export async function redriveDeadLetterEvents(config: KafkaConfig): Promise<number> {
  const events = await readDeadLetterTopic(config, Number.MAX_SAFE_INTEGER);
  if (events.length === 0) return 0;
  const producer = kafkaClient(config, 'dlq-redrive').producer({ idempotent: true, maxInFlightRequests: 1 });
  await connectKafka(producer, config.brokers);
  try {
    await producer.send({
      topic: config.topic,
      acks: -1,
      messages: events.map((event) => ({
        key: event.raw.key,
        value: event.raw.value,
        headers: {
          ...event.raw.headers,
          'walpurge-redriven-from': `${config.deadLetterTopic}/${event.partition}/${event.offset}`,
        },
      })),
    });
  } finally {
    await producer.disconnect().catch(() => {});
  }
  return events.length;
}
