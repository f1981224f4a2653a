import net from 'node:net';
import type { Worker } from 'node:worker_threads';
import kafkajs from 'kafkajs';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { KafkaConfig } from '@walpurge/config';
import { ErrorCode, WalpurgeError, createLogger } from '@walpurge/core';
import type { ChangeEvent } from '@walpurge/protocol';
import { readTopicRecords, uniqueName } from '@walpurge/testing';
import { testLogger } from '../test-support/harness.js';
import { docsUpdate } from '../test-support/docs-update.js';
import { createKafkaSink } from './kafka-sink.js';
import { toKafkaMessage } from './message-size.js';
import type * as ThreadProducerModule from './producer-thread.js';
import { ThreadProducer } from './producer-thread.js';

const services = inject('services');
const topics: string[] = [];

afterAll(async () => {
  const admin = new kafkajs.Kafka({
    brokers: services.kafkaBrokers,
    logLevel: kafkajs.logLevel.NOTHING,
  }).admin();
  await admin.connect();
  await admin.deleteTopics({ topics }).catch(() => {});
  await admin.disconnect();
});

function update(id: number, version: number): ChangeEvent {
  return docsUpdate(id, version, { after: { id, version, body: 'é'.repeat(id % 7) } });
}

interface ReadRecord {
  partition: number;
  key: string;
  value: string;
  headers: Record<string, string>;
  timestamp: string;
}

function readTopic(topic: string, count: number): Promise<ReadRecord[]> {
  return readTopicRecords(
    services.kafkaBrokers,
    topic,
    count,
    (message, partition) => ({
      partition,
      key: message.key?.toString() ?? '',
      value: message.value?.toString() ?? '',
      headers: Object.fromEntries(
        Object.entries(message.headers ?? {}).map(([name, value]) => [name, String(value)]),
      ),
      timestamp: message.timestamp,
    }),
    30_000,
  );
}

async function createTopic(topic: string): Promise<void> {
  const kafka = new kafkajs.Kafka({ brokers: services.kafkaBrokers, logLevel: kafkajs.logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
  await admin.disconnect();
}

describe('listener: the Kafka producer in its own thread', () => {
  it('writes what the in-process producer writes: same partitions, same order per row, same records', async () => {
    // 300 rows changed 3 times each, in publish calls of uneven sizes (one per transaction).
    const events = [1, 2, 3].flatMap((version) =>
      Array.from({ length: 300 }, (_, id) => update(id, version * 1000 + id)),
    );
    const calls: ChangeEvent[][] = [];
    for (let start = 0, size = 1; start < events.length; start += size, size = (size % 17) + 1)
      calls.push(events.slice(start, start + size));

    const read: Record<string, ReadRecord[]> = {};
    for (const producerThread of [true, false]) {
      const topic = uniqueName(producerThread ? 'thread' : 'inline');
      topics.push(topic);
      const sink = createKafkaSink({
        config: KafkaConfig.parse({ brokers: services.kafkaBrokers, topic, partitions: 6 }),
        logger: testLogger,
        producerThread,
      });
      await sink.connect();
      await Promise.all(calls.map((call) => sink.publish(call)));
      await sink.close();
      read[String(producerThread)] = await readTopic(topic, events.length);
    }
    const threaded = read['true'] as ReadRecord[];
    const inProcess = read['false'] as ReadRecord[];
    expect(threaded).toHaveLength(events.length);
    const byPartition = (records: ReadRecord[]): ReadRecord[][] =>
      [0, 1, 2, 3, 4, 5].map((p) => records.filter((r) => r.partition === p));
    // The same key → partition mapping (a rolling upgrade must not move a row) and the same order.
    expect(byPartition(threaded)).toEqual(byPartition(inProcess));
    expect(byPartition(threaded).filter((records) => records.length > 0).length).toBeGreaterThan(1);
    // Each record is exactly the message the sink built (key, JSON value, headers, commit time).
    const expected = new Map(events.map((event) => [toKafkaMessage(event).key as string, event]));
    for (const record of threaded.filter((r) => r.key.endsWith(':{"id":5}'))) {
      const event = JSON.parse(record.value) as ChangeEvent;
      expect(record.headers).toEqual({ table: 'public.docs', op: 'u', lsn: event.source.lsn });
      expect(record.timestamp).toBe(String(Date.parse(event.source.commitTs)));
      expect(expected.get(record.key)?.key).toEqual(event.key);
    }
    const versions = threaded
      .filter((r) => r.key.endsWith(':{"id":5}'))
      .map((r) => (JSON.parse(r.value) as ChangeEvent).after?.['version']);
    expect(versions).toEqual([1005, 2005, 3005]);
  });

  it('fails a request in flight, retriably, when its thread dies: no send waits forever', async () => {
    const topic = uniqueName('dies');
    topics.push(topic);
    const config = KafkaConfig.parse({ brokers: services.kafkaBrokers, topic });
    const lines: string[] = [];
    const logger = createLogger({
      level: 'info',
      pretty: false,
      destination: { write: (l) => lines.push(l) },
    });
    await createTopic(topic);
    const producer = new ThreadProducer(config, logger, { tls: false, connectedBefore: true });
    await producer.connect();
    const messages = Array.from({ length: 20_000 }, (_, id) => toKafkaMessage(update(id, id)));
    const sending = producer.send({ topic, acks: -1, messages });
    await (producer as unknown as { worker: Worker }).worker.terminate();
    const error = await sending.then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(WalpurgeError);
    expect(error).toMatchObject({ code: ErrorCode.KafkaUnavailable, retriable: true });
    expect((error as Error).message).toMatch(/^the Kafka producer thread stopped/);
    // And every later request, at once, instead of posting to a dead thread.
    await expect(producer.send({ topic, acks: -1, messages: messages.slice(0, 1) })).rejects.toThrow(
      /the Kafka producer thread stopped/,
    );
    await producer.disconnect();
    expect(lines.some((line) => line.includes('the Kafka producer thread stopped'))).toBe(true);
  });

  it('fails a request still in flight when it is disconnected, instead of leaving it pending', async () => {
    const topic = uniqueName('disconnect');
    topics.push(topic);
    await createTopic(topic);
    const config = KafkaConfig.parse({ brokers: services.kafkaBrokers, topic });
    const producer = new ThreadProducer(config, testLogger, { tls: false, connectedBefore: true });
    await producer.connect();
    const messages = Array.from({ length: 20_000 }, (_, id) => toKafkaMessage(update(id, id)));
    const sending = producer.send({ topic, acks: -1, messages }).then(
      () => 'sent',
      (error: unknown) => error,
    );
    await producer.disconnect();
    // Either it made it before the disconnect, or it failed retriably: never left pending.
    const outcome = await sending;
    if (outcome !== 'sent') expect(outcome).toMatchObject({ retriable: true });
  });

  it('says a thread that cannot start is not an outage: not retriable, with the way out', async () => {
    // The thread's logger refuses an unknown level at load: the thread dies before its first answer.
    const logger = createLogger({ level: 'silent', pretty: false });
    const broken = Object.create(logger, { level: { value: 'no-such-level' } }) as typeof logger;
    const config = KafkaConfig.parse({ brokers: services.kafkaBrokers });
    const producer = new ThreadProducer(config, broken, { tls: false, connectedBefore: true });
    const error = await producer.connect().then(
      () => undefined,
      (caught: unknown) => caught,
    );
    await producer.disconnect();
    expect(error).toBeInstanceOf(WalpurgeError);
    expect(error).toMatchObject({ code: ErrorCode.Internal, retriable: false });
    expect((error as WalpurgeError).message).toMatch(/^the Kafka producer thread could not start/);
    expect((error as WalpurgeError).hint).toContain('kafka.producerThread: false');
  });

  it("relays kafkajs's log lines, and a reset TLS handshake stays an outage once the process has connected", async () => {
    // A "broker" that drops every connection once the client's TLS hello arrives (destroyed before
    // it, the client would see a plain ECONNRESET instead): a TLS handshake reset, as when a broker
    // restarts. The sink starts its thread only after its own admin connected, so the thread
    // must count this as an outage (retriable), not as a refusal of the TLS settings (fatal).
    const dropper = net.createServer((socket) => socket.once('data', () => socket.destroy()));
    await new Promise<void>((resolve) => dropper.listen(0, '127.0.0.1', resolve));
    const port = (dropper.address() as net.AddressInfo).port;
    const lines: string[] = [];
    const logger = createLogger({
      level: 'debug',
      pretty: false,
      destination: { write: (l) => lines.push(l) },
    });
    try {
      const config = KafkaConfig.parse({ brokers: [`127.0.0.1:${port}`], ssl: true });
      const producer = new ThreadProducer(config, logger.child({ role: 'test' }), {
        tls: true,
        connectedBefore: true,
      });
      const error = await producer.connect().then(
        () => undefined,
        (caught: unknown) => caught,
      );
      await producer.disconnect();
      expect(error).toBeInstanceOf(WalpurgeError);
      expect(error).toMatchObject({ code: ErrorCode.KafkaUnavailable, retriable: true });
    } finally {
      dropper.close();
    }
    const kafkajsLines = lines
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((entry) => entry['component'] === 'kafkajs');
    expect(kafkajsLines.length).toBeGreaterThan(0);
    // Written by the main thread's logger: its bindings are on every relayed line.
    expect(kafkajsLines.every((entry) => entry['role'] === 'test')).toBe(true);
  }, 60_000);

  it('starts from the compiled entry as shipped (dist), not only from the TypeScript sources', async () => {
    const topic = uniqueName('compiled');
    topics.push(topic);
    await createTopic(topic);
    const compiledUrl = new URL('../../dist/kafka/producer-thread.js', import.meta.url).href;
    const compiled = (await import(compiledUrl)) as typeof ThreadProducerModule;
    const config = KafkaConfig.parse({ brokers: services.kafkaBrokers, topic });
    const producer = new compiled.ThreadProducer(config, testLogger, { tls: false, connectedBefore: true });
    await producer.connect();
    await producer.send({ topic, acks: -1, messages: [toKafkaMessage(update(1, 1))] });
    await producer.disconnect();
    const [record] = await readTopic(topic, 1);
    expect(record?.key).toBe('public.docs:{"id":1}');
  });
});
