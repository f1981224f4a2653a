import kafkajs, { type Admin, type IHeaders, type Kafka, type Producer } from 'kafkajs';
import { WalpurgeConfig, type WalpurgeConfigInput } from '@walpurge/config';
import { createLogger, createMetricsRegistry, type Logger, type Registry } from '@walpurge/core';
import { encodeChangeEvent, messageKey, type ChangeEvent } from '@walpurge/protocol';
import { uniqueName, waitFor, type ServiceUrls } from '@walpurge/testing';
import { createInvalidator, type Invalidator, type InvalidatorOptions } from '../src/create-invalidator.js';

/** Silent unless LOG_LEVEL is set: failures print their own evidence. */
export const logger: Logger = createLogger({ level: process.env['LOG_LEVEL'] ?? 'silent', pretty: false });

/** Names of one test's Kafka topics, consumer group and Redis key prefix, unique per call. */
export interface Names {
  topic: string;
  deadLetterTopic: string;
  /** The CDN queue topic (`kafka.cdnTopic`). */
  cdnTopic: string;
  group: string;
  /** Redis key prefix (`redis.keyPrefix`), ends with ':'. */
  prefix: string;
}

export function uniqueNames(label: string): Names {
  const base = uniqueName(label);
  return {
    topic: base,
    deadLetterTopic: `${base}_dlq`,
    cdnTopic: `${base}_cdn`,
    group: `${base}_group`,
    prefix: `${base}:`,
  };
}

/** A kafka-transport config for the invalidator with fast retries; `overrides` are merged per section. */
export function invalidatorConfig(
  services: ServiceUrls,
  names: Names,
  overrides: Partial<WalpurgeConfigInput> & { partitions?: number } = {},
): WalpurgeConfig {
  const { partitions = 3, invalidator, kafka, ...rest } = overrides;
  return WalpurgeConfig.parse({
    transport: 'kafka',
    kafka: {
      brokers: services.kafkaBrokers,
      topic: names.topic,
      deadLetterTopic: names.deadLetterTopic,
      cdnTopic: names.cdnTopic,
      consumerGroup: names.group,
      partitions,
      ...kafka,
    },
    redis: { url: services.redisUrl, keyPrefix: names.prefix },
    log: { level: 'warn' },
    ...rest,
    invalidator: {
      coalesceWindowMs: 5,
      retryInitialMs: 20,
      retryMaxMs: 200,
      stopTimeoutMs: 5_000,
      sessionTimeoutMs: 6_000,
      ...invalidator,
    },
  });
}

export interface Running {
  invalidator: Invalidator;
  registry: Registry;
  stop(): Promise<void>;
}

/** Starts an invalidator that consumes Kafka, and waits until it joined its consumer group. */
export async function startInvalidator(
  config: WalpurgeConfig,
  extra: Partial<Omit<InvalidatorOptions, 'config' | 'logger' | 'registry' | 'consume'>> = {},
): Promise<Running> {
  const registry = createMetricsRegistry({ defaultMetrics: false });
  const invalidator = createInvalidator({ config, logger, registry, consume: 'kafka', ...extra });
  await invalidator.start(new AbortController().signal);
  await waitFor('the invalidator to join its consumer group', async () => invalidator.isReady(), {
    timeoutMs: 30_000,
    intervalMs: 50,
  });
  return { invalidator, registry, stop: () => invalidator.stop() };
}

export function kafkaClient(services: ServiceUrls): Kafka {
  return new kafkajs.Kafka({
    clientId: 'invalidator-test',
    brokers: services.kafkaBrokers,
    logLevel: kafkajs.logLevel.NOTHING,
  });
}

export interface RawMessage {
  key?: string | null;
  value: string | Buffer | null;
  headers?: IHeaders;
}

/** A connected producer plus helpers to send protocol v1 events and raw messages. */
export async function connectProducer(kafka: Kafka): Promise<{
  producer: Producer;
  sendEvents(topic: string, events: readonly ChangeEvent[]): Promise<void>;
  sendRaw(topic: string, messages: readonly RawMessage[]): Promise<void>;
}> {
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  return {
    producer,
    sendEvents: async (topic, events) => {
      await producer.send({
        topic,
        acks: -1,
        messages: events.map((event) => ({ key: messageKey(event), value: encodeChangeEvent(event) })),
      });
    },
    sendRaw: async (topic, messages) => {
      await producer.send({ topic, acks: -1, messages: [...messages] });
    },
  };
}

/** Committed offset per partition of the group (-1 when nothing was committed yet). */
export async function committedOffsets(admin: Admin, group: string, topic: string): Promise<number[]> {
  const [result] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
  return (result?.partitions ?? [])
    .slice()
    .sort((a, b) => a.partition - b.partition)
    .map((partition) => Number(partition.offset));
}

/** End offset per partition (the offset the next message will get). */
export async function endOffsets(admin: Admin, topic: string): Promise<number[]> {
  const offsets = await admin.fetchTopicOffsets(topic);
  return offsets
    .slice()
    .sort((a, b) => a.partition - b.partition)
    .map((partition) => Number(partition.high));
}

/** Waits until the group has committed every message of the topic. */
export async function waitForAllCommitted(
  admin: Admin,
  group: string,
  topic: string,
  timeoutMs = 30_000,
): Promise<void> {
  await waitFor(
    `group ${group} to commit all of ${topic}`,
    async () => {
      const [committed, ends] = await Promise.all([
        committedOffsets(admin, group, topic),
        endOffsets(admin, topic),
      ]);
      return ends.every((end, partition) => end === 0 || committed[partition] === end);
    },
    { timeoutMs, intervalMs: 100 },
  );
}

export interface DeadLetter {
  key: string | null;
  value: string | null;
  headers: Record<string, string>;
}

/** Reads a topic from the beginning, collecting messages with their headers as strings. */
export async function readTopic(
  kafka: Kafka,
  topic: string,
): Promise<{ messages: DeadLetter[]; stop(): Promise<void> }> {
  const consumer = kafka.consumer({ groupId: uniqueName('reader') });
  const messages: DeadLetter[] = [];
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => {
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(message.headers ?? {}))
        headers[name] = Array.isArray(value) ? value.map(String).join(',') : String(value);
      messages.push({
        key: message.key?.toString('utf8') ?? null,
        value: message.value?.toString('utf8') ?? null,
        headers,
      });
    },
  });
  return { messages, stop: () => consumer.disconnect() };
}

/**
 * Sum of the metric's series whose labels match `labels` (0 when absent). Histogram parts are
 * addressed by their full name (`…_count`, `…_sum`).
 */
export async function metricValue(
  registry: Registry,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const base = name.replace(/_(count|sum)$/, '');
  const metric = await (registry.getSingleMetric(name) ?? registry.getSingleMetric(base))?.get();
  return (metric?.values ?? [])
    .filter((v) => ((v as { metricName?: string }).metricName ?? name) === name)
    .filter((v) => Object.entries(labels).every(([key, want]) => String(v.labels[key]) === want))
    .reduce((sum, v) => sum + v.value, 0);
}

let lsn = 0x16b0000;

/** A protocol v1 change event of `public.<table>`, committed now. */
export function changeEvent(
  op: ChangeEvent['op'],
  table: string,
  rows: Pick<ChangeEvent, 'key' | 'before' | 'after'> & { unchanged?: string[] },
): ChangeEvent {
  lsn += 0x10;
  return {
    v: 1,
    op,
    source: {
      db: 'app',
      schema: 'public',
      table,
      lsn: `0/${lsn.toString(16).toUpperCase()}`,
      xid: 1,
      commitTs: new Date().toISOString(),
      origin: null,
    },
    key: rows.key,
    before: rows.before,
    after: rows.after,
    unchanged: rows.unchanged ?? [],
  };
}

/** Deletes every key under a prefix (tests share one Redis). */
export { deleteRedisKeys as deleteKeys } from '@walpurge/testing';
