import { randomUUID } from 'node:crypto';
import type { KafkaConfig, WalpurgeConfig } from '@walpurge/config';
import { errorMessage } from '@walpurge/core';
import { deadLetterHeaders, matchedRuleNames, type DeadLetterSelection } from '@walpurge/invalidator';
import { decodeAnyChangeEvent, qualifiedTable, type ChangeEvent } from '@walpurge/protocol';
import { cdnSupportsPrefixes, compileRules, type CompiledRules } from '@walpurge/rules';
import kafkajs, { type IHeaders, type KafkaMessage } from 'kafkajs';
import { kafkaClient } from '../status/kafka-status.js';
import { connectKafka } from '../live/connection-errors.js';
import { selects, type DeadLetterEntry } from './dead-letter-entry.js';
import { OldestFirst } from './oldest-first.js';

/** A dead letter on the topic: the entry shown, and the raw parts to produce it again unchanged. */
export interface TopicDeadLetter {
  entry: DeadLetterEntry;
  partition: number;
  offset: string;
  raw: { key: Buffer | null; value: Buffer | null; headers: IHeaders };
}

/** Reading stops with an error when the topic yields nothing for this long (a stuck fetch). */
const IDLE_TIMEOUT_MS = 30_000;
/** Records per produce request of a redrive. */
const REDRIVE_BATCH = 500;

function headerText(headers: IHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (value === undefined) continue;
    out[name] = Array.isArray(value) ? value.map(String).join(',') : String(value);
  }
  return out;
}

function decoded(message: KafkaMessage): ChangeEvent | undefined {
  try {
    return decodeAnyChangeEvent(message.value, message.key) ?? undefined;
  } catch {
    return undefined;
  }
}

/**
 * What a record says about itself. Refusals carry walpurge-cause/-table/-rules headers; records
 * dead-lettered before those existed (or undecodable ones) fall back on the event itself and on
 * the configured rules, so selecting by table or rule works on them too.
 */
export function entryOf(partition: number, message: KafkaMessage, rules: CompiledRules): DeadLetterEntry {
  const headers = headerText(message.headers);
  const event = decoded(message);
  const rulesHeader = headers[deadLetterHeaders.rules];
  return {
    id: `${partition}:${message.offset}`,
    deadLetteredAt: new Date(Number(message.timestamp)).toISOString(),
    cause: headers[deadLetterHeaders.cause] ?? headers[deadLetterHeaders.reason] ?? 'unknown',
    target: headers[deadLetterHeaders.target] ?? null,
    table: headers[deadLetterHeaders.table] ?? (event ? qualifiedTable(event) : null),
    rules:
      rulesHeader !== undefined
        ? rulesHeader.split(',').filter(Boolean)
        : event
          ? matchedRuleNames(rules, event)
          : [],
    lsn: event?.source.lsn ?? null,
    errorCode: headers[deadLetterHeaders.errorCode] ?? 'unknown',
    error: headers[deadLetterHeaders.error] ?? '',
    key: message.key?.toString('utf8') ?? null,
    event: message.value?.toString('utf8') ?? '',
  };
}

function compiledRulesOf(config: WalpurgeConfig): CompiledRules {
  return compileRules(config.rules, { cdnPrefixPurge: cdnSupportsPrefixes(config.cdn) });
}

/**
 * Reads the dead-letter topic from its start up to the high watermarks seen at the beginning, with
 * a throwaway consumer group that commits nothing and is deleted afterwards; returns the `limit`
 * oldest records the selection selects (by record timestamp), oldest first. The whole range is
 * read: partitions arrive one after another, so the first `limit` read are not the oldest.
 */
export async function readDeadLetterTopic(
  config: WalpurgeConfig & { kafka: KafkaConfig },
  selection: DeadLetterSelection,
  limit: number,
): Promise<TopicDeadLetter[]> {
  const kafkaConfig = config.kafka;
  const rules = compiledRulesOf(config);
  const kafka = kafkaClient(kafkaConfig, 'dlq');
  const admin = kafka.admin();
  await connectKafka(admin, kafkaConfig.brokers);
  const groupId = `walpurge-dlq-cli-${randomUUID()}`;
  try {
    if (!(await admin.listTopics()).includes(kafkaConfig.deadLetterTopic)) return [];
    const offsets = await admin.fetchTopicOffsets(kafkaConfig.deadLetterTopic);
    const remaining = new Map(
      offsets.filter((p) => BigInt(p.high) > BigInt(p.low)).map((p) => [p.partition, BigInt(p.high)]),
    );
    if (remaining.size === 0) return [];
    const consumer = kafka.consumer({ groupId, allowAutoTopicCreation: false });
    const found = new OldestFirst<TopicDeadLetter>(limit, (letter) => ({
      timestampMs: Date.parse(letter.entry.deadLetteredAt),
      partition: letter.partition,
      offset: BigInt(letter.offset),
    }));
    await consumer.connect();
    try {
      await consumer.subscribe({ topic: kafkaConfig.deadLetterTopic, fromBeginning: true });
      await new Promise<void>((resolve, reject) => {
        let timer: NodeJS.Timeout | undefined;
        const idle = (): void => {
          clearTimeout(timer);
          timer = setTimeout(
            () => reject(new Error(`timed out reading ${kafkaConfig.deadLetterTopic}: no record for 30 s`)),
            IDLE_TIMEOUT_MS,
          );
        };
        idle();
        consumer
          .run({
            autoCommit: false,
            eachMessage: async ({ partition, message }) => {
              idle();
              const end = remaining.get(partition);
              if (end === undefined) return;
              if (BigInt(message.offset) >= end) {
                remaining.delete(partition);
              } else {
                const entry = entryOf(partition, message, rules);
                if (selects(selection, entry))
                  found.add({
                    entry,
                    partition,
                    offset: message.offset,
                    raw: { key: message.key, value: message.value, headers: message.headers ?? {} },
                  });
                if (BigInt(message.offset) + 1n >= end) remaining.delete(partition);
              }
              if (remaining.size === 0) {
                clearTimeout(timer);
                resolve();
              }
            },
          })
          .catch((error: unknown) => {
            clearTimeout(timer);
            reject(error instanceof Error ? error : new Error(errorMessage(error)));
          });
      });
    } finally {
      await consumer.disconnect().catch(() => {});
    }
    return found.result();
  } finally {
    await admin.deleteGroups([groupId]).catch(() => {});
    await admin.disconnect().catch(() => {});
  }
}

/**
 * Copies the selected dead letters back to the change topic, same key (so same partition and
 * order) and headers plus `walpurge-redriven-from`, in batches; `progress` after each batch. The
 * dead-letter topic is left as it is (its retention removes them).
 */
export async function redriveTopicDeadLetters(
  config: KafkaConfig,
  letters: readonly TopicDeadLetter[],
  progress: (done: number, total: number) => void,
): Promise<number> {
  if (letters.length === 0) return 0;
  const producer = kafkaClient(config, 'dlq-redrive').producer({
    idempotent: true,
    maxInFlightRequests: 1,
    // The listener's partitioner (kafkajs 2's default, named so that it does not warn): a redriven
    // event lands in its row's partition, behind the row's earlier changes.
    createPartitioner: kafkajs.Partitioners.DefaultPartitioner,
  });
  await connectKafka(producer, config.brokers);
  let done = 0;
  try {
    for (let start = 0; start < letters.length; start += REDRIVE_BATCH) {
      const batch = letters.slice(start, start + REDRIVE_BATCH);
      await producer.send({
        topic: config.topic,
        acks: -1,
        messages: batch.map((letter) => ({
          key: letter.raw.key,
          value: letter.raw.value,
          headers: {
            ...letter.raw.headers,
            'walpurge-redriven-from': `${config.deadLetterTopic}/${letter.partition}/${letter.offset}`,
          },
        })),
      });
      done += batch.length;
      progress(done, letters.length);
    }
  } finally {
    await producer.disconnect().catch(() => {});
  }
  return done;
}
