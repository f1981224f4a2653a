import kafkajs from 'kafkajs';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { KafkaConfig } from '@walpurge/config';
import { ErrorCode, WalpurgeError } from '@walpurge/core';
import type { ChangeEvent } from '@walpurge/protocol';
import { freePort, readTopicRecords, uniqueName, waitFor } from '@walpurge/testing';
import { testLogger } from '../test-support/harness.js';
import { docsUpdate } from '../test-support/docs-update.js';
import { createKafkaSink } from './kafka-sink.js';
import { toKafkaMessage } from './message-size.js';
import { PlatformaticProducer } from './platformatic-producer.js';

/**
 * kafka.producerClient: platformatic against a real broker: the partitions kafkajs picks, and its
 * failures classified from errors the broker really returns (not hand-made ones).
 */
const services = inject('services');
const topics: string[] = [];

function admin(): kafkajs.Admin {
  return new kafkajs.Kafka({ brokers: services.kafkaBrokers, logLevel: kafkajs.logLevel.NOTHING }).admin();
}

afterAll(async () => {
  const client = admin();
  await client.connect();
  await client.deleteTopics({ topics }).catch(() => {});
  await client.disconnect();
});

/** Keys with multibyte characters: partitions hash their UTF-8 bytes. */
function update(id: number, version: number): ChangeEvent {
  return docsUpdate(id, version, { key: { id, name: `row-${'é'.repeat(id % 5)}` } });
}

interface ReadRecord {
  partition: number;
  key: string;
  version: number;
  client: string;
  timestamp: string;
}

function readTopic(topic: string, count: number): Promise<ReadRecord[]> {
  return readTopicRecords(services.kafkaBrokers, topic, count, (message, partition) => {
    const value = JSON.parse(message.value?.toString() ?? '{}') as { after?: { version?: number } };
    return {
      partition,
      key: message.key?.toString() ?? '',
      version: value.after?.version ?? -1,
      client: String(message.headers?.['lsn'] ?? ''),
      timestamp: message.timestamp,
    };
  });
}

async function caught(promise: Promise<unknown>): Promise<WalpurgeError> {
  const error = await promise.then(
    () => undefined,
    (failure: unknown) => failure,
  );
  expect(error).toBeInstanceOf(WalpurgeError);
  return error as WalpurgeError;
}

describe('listener: the platformatic Kafka producer', () => {
  it('puts every key in the partition kafkajs puts it in, in order per row, with the same records', async () => {
    const topic = uniqueName('both_clients');
    topics.push(topic);
    // 400 rows changed twice by each client, in publish calls of uneven sizes, to ONE topic.
    const rows = 400;
    const eventsOf = (first: number): ChangeEvent[] =>
      [first, first + 1].flatMap((version) => Array.from({ length: rows }, (_, id) => update(id, version)));
    const callsOf = (events: ChangeEvent[]): ChangeEvent[][] => {
      const calls: ChangeEvent[][] = [];
      for (let start = 0, size = 1; start < events.length; start += size, size = (size % 23) + 1)
        calls.push(events.slice(start, start + size));
      return calls;
    };
    for (const [producerClient, first] of [
      ['kafkajs', 1],
      ['platformatic', 3],
    ] as const) {
      const sink = createKafkaSink({
        config: KafkaConfig.parse({ brokers: services.kafkaBrokers, topic, partitions: 7, producerClient }),
        logger: testLogger,
      });
      await sink.connect();
      await Promise.all(callsOf(eventsOf(first)).map((call) => sink.publish(call)));
      await sink.close();
    }
    const records = await readTopic(topic, rows * 4);
    expect(records).toHaveLength(rows * 4);
    const byKey = new Map<string, ReadRecord[]>();
    for (const record of records) byKey.set(record.key, [...(byKey.get(record.key) ?? []), record]);
    expect(byKey.size).toBe(rows);
    for (const [key, written] of byKey) {
      // versions 1-2 by kafkajs, 3-4 by platformatic: one partition, in order.
      expect(
        written.map((record) => record.version),
        key,
      ).toEqual([1, 2, 3, 4]);
      expect(new Set(written.map((record) => record.partition)).size, key).toBe(1);
    }
    expect(new Set(records.map((record) => record.partition)).size).toBe(7);
    // The record as the sink built it: the commit time is the record's timestamp.
    const sample = records.find((record) => record.version === 3) as ReadRecord;
    const id = Number(/"id":(\d+)/.exec(sample.key)?.[1]);
    expect(sample.timestamp).toBe(toKafkaMessage(update(id, 3)).timestamp);
  });

  it('says a message too large for the topic is no outage: not retriable, with the limit to raise', async () => {
    const topic = uniqueName('small_limit');
    topics.push(topic);
    const client = admin();
    await client.connect();
    await client.createTopics({
      topics: [{ topic, numPartitions: 1, configEntries: [{ name: 'max.message.bytes', value: '2000' }] }],
      waitForLeaders: true,
    });
    await client.disconnect();
    const config = KafkaConfig.parse({
      brokers: services.kafkaBrokers,
      topic,
      producerClient: 'platformatic',
    });
    const producer = new PlatformaticProducer(config, { tls: false, connectedBefore: false });
    try {
      await producer.connect();
      const error = await caught(
        producer.send({ topic, acks: -1, messages: [{ key: 'k', value: Buffer.alloc(10_000, 1) }] }),
      );
      expect(error.retriable).toBe(false);
      expect(error.code).toBe(ErrorCode.ConfigInvalid);
      expect(error.message).toContain('MESSAGE_TOO_LARGE');
      expect(error.hint).toContain(`max.message.bytes of topic ${topic}`);
    } finally {
      await producer.disconnect();
    }
  });

  it('says a refused connection (a closed port) is an outage: retriable', async () => {
    const broker = `127.0.0.1:${await freePort()}`;
    const config = KafkaConfig.parse({ brokers: [broker], producerClient: 'platformatic' });
    const producer = new PlatformaticProducer(config, { tls: false, connectedBefore: false, retries: 2 });
    try {
      const error = await caught(producer.connect());
      expect(error.retriable).toBe(true);
      expect(error.code).toBe(ErrorCode.KafkaUnavailable);
      expect(error.message).toContain(broker);
      expect(error.message).toContain('ECONNREFUSED');
    } finally {
      await producer.disconnect();
    }
  });

  it('says a topic that does not exist at a send (deleted: we never auto-create) is not retriable', async () => {
    const topic = uniqueName('deleted');
    const client = admin();
    await client.connect();
    await client.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
    const config = KafkaConfig.parse({
      brokers: services.kafkaBrokers,
      topic,
      producerClient: 'platformatic',
    });
    const producer = new PlatformaticProducer(config, { tls: false, connectedBefore: false, retries: 2 });
    try {
      await producer.connect();
      await producer.send({ topic, acks: -1, messages: [{ key: 'k', value: 'before' }] });
      await client.deleteTopics({ topics: [topic] });
      await waitFor('the topic gone', async () => !(await client.listTopics()).includes(topic));
      const error = await caught(
        producer.send({ topic, acks: -1, messages: [{ key: 'k', value: 'after' }] }),
      );
      expect(error.retriable).toBe(false);
      expect(error.code).toBe(ErrorCode.ConfigInvalid);
      expect(error.message).toContain(`Kafka topic "${topic}" does not exist`);
      expect(await client.listTopics()).not.toContain(topic);
    } finally {
      await client.disconnect();
      await producer.disconnect();
    }
  });

  it('retries a topic missing at connect (metadata lagging behind its creation)', async () => {
    const topic = uniqueName('missing');
    const config = KafkaConfig.parse({
      brokers: services.kafkaBrokers,
      topic,
      producerClient: 'platformatic',
    });
    const producer = new PlatformaticProducer(config, { tls: false, connectedBefore: false, retries: 2 });
    try {
      const error = await caught(producer.connect());
      expect(error.retriable).toBe(true);
      expect(error.message).toContain(`Kafka topic "${topic}" does not exist`);
    } finally {
      await producer.disconnect();
    }
  });

  it('after a failed send, refuses every publish until connect, then writes with a fresh producer', async () => {
    const topic = uniqueName('replay');
    topics.push(topic);
    const sink = createKafkaSink({
      config: KafkaConfig.parse({
        brokers: services.kafkaBrokers,
        topic,
        partitions: 1,
        producerClient: 'platformatic',
      }),
      logger: testLogger,
    });
    const client = admin();
    const probe = new kafkajs.Kafka({
      brokers: services.kafkaBrokers,
      logLevel: kafkajs.logLevel.NOTHING,
    }).producer({ retry: { retries: 0 } });
    let probes = 0;
    /**
     * The topic's max.message.bytes set, and applied: the broker takes a moment after the admin
     * answered, so a probe message of the same size tells (probes written are counted, then skipped;
     * JSON, as the reader parses every value).
     */
    const topicLimit = async (bytes: number): Promise<void> => {
      await client.alterConfigs({
        validateOnly: false,
        resources: [
          {
            type: kafkajs.ConfigResourceTypes.TOPIC,
            name: topic,
            configEntries: [{ name: 'max.message.bytes', value: String(bytes) }],
          },
        ],
      });
      await waitFor(`max.message.bytes ${bytes} applied`, async () => {
        const accepted = await probe
          .send({
            topic,
            acks: -1,
            messages: [{ key: 'probe', value: JSON.stringify({ probe: 'x'.repeat(3000) }) }],
          })
          .then(
            () => true,
            () => false,
          );
        if (accepted) probes += 1;
        return accepted === bytes > 3000;
      });
    };
    const big = (version: number): ChangeEvent => ({
      ...update(1, version),
      before: { body: 'x'.repeat(3000) },
    });
    await client.connect();
    await probe.connect();
    try {
      await sink.connect();
      await sink.publish([big(1)]);
      // The topic's limit lowered under the running sink (it checked it at connect): Kafka refuses
      // the next request for good, and the sink holds that refusal until the replay's connect.
      await topicLimit(1000);
      const failed = await caught(sink.publish([big(2)]));
      expect(failed.retriable).toBe(false);
      expect(failed.message).toContain('MESSAGE_TOO_LARGE');
      expect(await caught(sink.publish([big(3)]))).toBe(failed);
      await topicLimit(1_000_000);
      await sink.connect();
      await sink.publish([big(2), big(3)]);
    } finally {
      await probe.disconnect();
      await client.disconnect();
      await sink.close();
    }
    const written = (await readTopic(topic, 3 + probes)).filter((record) => record.key !== 'probe');
    expect(written.map((record) => record.version)).toEqual([1, 2, 3]);
  });

  it('refuses the producer thread with it, before connecting anything', async () => {
    const sink = createKafkaSink({
      config: KafkaConfig.parse({
        brokers: services.kafkaBrokers,
        topic: uniqueName('never'),
        producerClient: 'platformatic',
        producerThread: true,
      }),
      logger: testLogger,
    });
    const error = await caught(sink.connect());
    await sink.close();
    expect(error.retriable).toBe(false);
    expect(error.code).toBe(ErrorCode.ConfigInvalid);
    expect(error.message).toContain('remove kafka.producerThread');
  });
});
