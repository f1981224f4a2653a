import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { Kafka, logLevel, type Admin, type KafkaMessage, type Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createLogger, createMetricsRegistry } from '@walpurge/core';
import {
  DeadLetterQueue,
  KafkaDeadLetterSink,
  createInvalidatorMetrics,
  deadLetterHeaders,
} from '@walpurge/invalidator';
import { encodeChangeEvent, messageKey, type ChangeEvent } from '@walpurge/protocol';
import { uniqueName } from '@walpurge/testing';
import { runCli } from './cli.js';
import { captureIo } from './testing/capture-io.js';

/**
 * `walpurge dlq list|redrive` selectors on the Kafka dead-letter topic: by table, rule, cause and
 * time, on records the sink wrote (walpurge-* headers) and on older ones without those headers
 * (selected from the event and the configured rules).
 */
const services = inject('services');
const name = uniqueName('dlq_kafka');
const changeTopic = `${name}.changes`;
const deadLetterTopic = `${name}.dlq`;
const dir = mkdtempSync(join(tmpdir(), 'walpurge-dlq-kafka-'));
const configFile = join(dir, 'walpurge.yaml');
let kafka: Kafka;
let admin: Admin;
let producer: Producer;

const event = (table: string, id: number, lsn: string): ChangeEvent => ({
  v: 1,
  op: 'c',
  source: {
    db: 'app',
    schema: 'public',
    table,
    lsn,
    xid: 7,
    commitTs: new Date().toISOString(),
    origin: null,
  },
  key: { id },
  before: null,
  after: { id },
  unchanged: [],
});
const oldItem = event('items', 10, '0/10');
const item = event('items', 1, '0/20');
const note = event('notes', 1, '0/30');

beforeAll(async () => {
  kafka = new Kafka({ clientId: name, brokers: services.kafkaBrokers, logLevel: logLevel.NOTHING });
  admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({
    topics: [
      { topic: changeTopic, numPartitions: 1 },
      { topic: deadLetterTopic, numPartitions: 1 },
    ],
    waitForLeaders: true,
  });
  producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  writeFileSync(
    configFile,
    `transport: kafka
kafka:
  brokers: ['\${KAFKA_BROKERS}']
  topic: ${changeTopic}
  deadLetterTopic: ${deadLetterTopic}
  consumerGroup: ${name}
log:
  level: fatal
rules:
  - table: public.items
    name: items-cache
    on: [insert, update, delete]
    redis:
      keys: ['item:{id}']
  - table: public.notes
    name: notes-cache
    on: [insert, update, delete]
    redis:
      keys: ['note:{id}']
`,
  );

  // A dead letter from before the walpurge-* headers, three hours old: selected from its event.
  await producer.send({
    topic: deadLetterTopic,
    acks: -1,
    messages: [
      {
        key: messageKey(oldItem),
        value: encodeChangeEvent(oldItem),
        timestamp: String(Date.now() - 3 * 3_600_000),
        headers: {
          [deadLetterHeaders.reason]: 'purge-rejected',
          [deadLetterHeaders.errorCode]: 'WP_PURGE_FAILED',
          [deadLetterHeaders.error]: 'old refusal',
        },
      },
    ],
  });
  // Two through the sink, as the invalidator stores refused events now.
  const logger = createLogger({ level: 'fatal', pretty: false });
  const queue = new DeadLetterQueue({
    producer,
    topic: deadLetterTopic,
    maxMessageBytes: 1_000_000,
    metrics: createInvalidatorMetrics(createMetricsRegistry({ defaultMetrics: false })),
    logger,
    backoff: { initialMs: 20, maxMs: 200, multiplier: 2, jitter: 0.5 },
  });
  const sink = new KafkaDeadLetterSink(queue);
  const signal = new AbortController().signal;
  await sink.send(
    {
      event: item,
      cause: 'purge-rejected',
      error: new Error('WRONGTYPE'),
      target: 'redis',
      rules: ['items-cache'],
    },
    signal,
  );
  await sink.send(
    {
      event: note,
      cause: 'cdn-rejected',
      error: new Error('answered 400'),
      target: 'cloudflare',
      rules: ['notes-cache'],
    },
    signal,
  );
});

afterAll(async () => {
  await producer?.disconnect().catch(() => {});
  await admin?.deleteTopics({ topics: [changeTopic, deadLetterTopic] }).catch(() => {});
  await admin?.disconnect().catch(() => {});
  rmSync(dir, { recursive: true, force: true });
});

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const io = captureIo({ KAFKA_BROKERS: services.kafkaBrokers[0] ?? '', WALPURGE_CONFIG: configFile });
  const code = await runCli(argv, io);
  return { code, out: io.out(), err: io.err() };
}

async function listIds(...selectors: string[]): Promise<string[]> {
  const listed = await cli('dlq', 'list', ...selectors, '--json');
  expect(listed.code, listed.err).toBe(0);
  return (JSON.parse(listed.out) as Array<{ id: string }>).map((entry) => entry.id);
}

async function changeTopicMessages(count: number): Promise<KafkaMessage[]> {
  const consumer = kafka.consumer({ groupId: `${name}-${randomUUID()}` });
  const messages: KafkaMessage[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic: changeTopic, fromBeginning: true });
    await consumer.run({ eachMessage: async ({ message }) => void messages.push(message) });
    await expect.poll(() => messages.length, { timeout: 20_000 }).toBeGreaterThanOrEqual(count);
  } finally {
    await consumer.disconnect();
  }
  return messages;
}

describe('dlq list|redrive on the Kafka dead-letter topic', () => {
  it('the sink writes the event with its key and the cause, target, rules and table headers', async () => {
    const listed = await cli('dlq', 'list', '--json');
    expect(listed.code, listed.err).toBe(0);
    const entries = JSON.parse(listed.out) as unknown[];
    expect(entries).toEqual([
      expect.objectContaining({
        id: '0:0',
        cause: 'purge-rejected',
        table: 'public.items',
        rules: ['items-cache'],
        target: null,
      }),
      expect.objectContaining({
        id: '0:1',
        cause: 'purge-rejected',
        target: 'redis',
        table: 'public.items',
        rules: ['items-cache'],
        lsn: '0/20',
        errorCode: 'unknown',
        error: 'WRONGTYPE',
        key: messageKey(item),
        event: encodeChangeEvent(item).toString('utf8'),
      }),
      expect.objectContaining({
        id: '0:2',
        cause: 'cdn-rejected',
        target: 'cloudflare',
        rules: ['notes-cache'],
      }),
    ]);
  });

  it('--table, --rule, --since and --until select', async () => {
    expect(await listIds('--table', 'public.notes')).toEqual(['0:2']);
    expect(await listIds('--table', 'items')).toEqual(['0:0', '0:1']);
    expect(await listIds('--rule', 'items-cache')).toEqual(['0:0', '0:1']);
    expect(await listIds('--since', '1h')).toEqual(['0:1', '0:2']);
    expect(await listIds('--until', '1h')).toEqual(['0:0']);
    expect(await listIds('--rule', 'items-cache', '--since', '1h')).toEqual(['0:1']);
    expect(
      await listIds('--since', new Date(Date.now() - 2 * 3_600_000).toISOString(), '--limit', '1'),
    ).toEqual(['0:1']);
    const text = await cli('dlq', 'list', '--rule', 'nope');
    expect(text).toEqual({ code: 0, out: `no selected dead-letter events in ${deadLetterTopic}\n`, err: '' });
    const bad = await cli('dlq', 'list', '--since', 'last tuesday');
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/^walpurge dlq list: --since 'last tuesday' is neither an ISO-8601 time/);
  });

  it('redrive --reason re-produces only the selected records; --dry-run changes nothing', async () => {
    const dry = await cli('dlq', 'redrive', '--reason', 'purge-rejected', '--dry-run');
    expect(dry.code, dry.err).toBe(0);
    expect(dry.out).toMatch(
      /^0:0 .*\n.*\n.*\n0:1 .*\n.*\n.*\ndry run: would redrive 2 dead-letter events from /,
    );
    const redriven = await cli('dlq', 'redrive', '--reason', 'cdn-rejected');
    expect(redriven).toEqual({
      code: 0,
      out: `copied 1 dead-letter event from ${deadLetterTopic} back to ${changeTopic}\n`,
      err: '',
    });
    const messages = await changeTopicMessages(1);
    expect(messages).toHaveLength(1);
    expect(messages[0]?.key?.toString()).toBe(messageKey(note));
    expect(messages[0]?.value?.toString()).toBe(encodeChangeEvent(note).toString('utf8'));
    expect(messages[0]?.headers?.['walpurge-redriven-from']?.toString()).toBe(`${deadLetterTopic}/0/2`);
    const offsets = await admin.fetchTopicOffsets(changeTopic);
    expect(offsets.map((p) => p.high)).toEqual(['1']);
  });
});
