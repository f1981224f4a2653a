import kafkajs from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KafkaConfig } from '@walpurge/config';
import { ErrorCode, WalpurgeError } from '@walpurge/core';
import type { ChangeEvent } from '@walpurge/protocol';
import { tlsOptions } from '@walpurge/kafka';
import {
  makeKafkaCertificates,
  readTopicRecords,
  startLocalKafka,
  uniqueName,
  type KafkaCertificates,
  type LocalKafka,
  type SecuredListeners,
} from '@walpurge/testing';
import { testLogger } from '../test-support/harness.js';
import { docsUpdate } from '../test-support/docs-update.js';
import { createKafkaSink } from './kafka-sink.js';
import { PlatformaticProducer } from './platformatic-producer.js';

/**
 * kafka.producerClient: platformatic against a broker of its own (one JVM for the file) with TLS,
 * mTLS and SASL listeners, and restarted under the producer: the settings of our KafkaConfig reach
 * the client, its refusals are classified as the kafkajs path classifies them, and an outage is
 * recovered from without losing or reordering anything.
 */
const user = 'walpurge';
const password = `sasl-${uniqueName('pw')}`;
let certificates: KafkaCertificates;
let broker: LocalKafka;
let secured: SecuredListeners;

beforeAll(async () => {
  certificates = await makeKafkaCertificates();
  broker = await startLocalKafka({ security: { certificates, users: [{ username: user, password }] } });
  if (!broker.secured) throw new Error('the broker has no secured listeners');
  secured = broker.secured;
});

afterAll(async () => {
  await broker?.stop();
  await certificates?.remove();
});

const event = docsUpdate;

/** Every (id, version) of a topic, read through the broker's plaintext listener. */
function versions(topic: string, count: number): Promise<Array<[number, number]>> {
  return readTopicRecords(broker.brokers, topic, count, (message): [number, number] => {
    const value = JSON.parse(message.value?.toString() ?? '{}') as {
      after: { id: number; version: number };
    };
    return [value.after.id, value.after.version];
  });
}

/** How many records the topic holds now (the sum of its partitions' end offsets). */
async function recordsIn(topic: string): Promise<number> {
  const admin = new kafkajs.Kafka({ brokers: broker.brokers, logLevel: kafkajs.logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    return (await admin.fetchTopicOffsets(topic)).reduce((sum, { high }) => sum + Number(high), 0);
  } finally {
    await admin.disconnect();
  }
}

type Security = () => Pick<KafkaConfig, 'brokers'> & Partial<Pick<KafkaConfig, 'ssl' | 'sasl'>>;

const MODES: Array<[string, Security]> = [
  [
    'TLS with a CA file',
    () => ({ brokers: [secured.ssl], ssl: { ca: certificates.caFile, rejectUnauthorized: true } }),
  ],
  [
    'mTLS with a client certificate',
    () => ({
      brokers: [secured.mtls],
      ssl: {
        ca: certificates.caFile,
        cert: certificates.clientCertFile,
        key: certificates.clientKeyFile,
        rejectUnauthorized: true,
      },
    }),
  ],
  ...(['plain', 'scram-sha-256', 'scram-sha-512'] as const).map((mechanism): [string, Security] => [
    `SASL ${mechanism}`,
    () => ({ brokers: [secured.sasl], sasl: { mechanism, username: user, password } }),
  ]),
];

async function refusal(security: ReturnType<Security>, connectedBefore = false): Promise<WalpurgeError> {
  const config = KafkaConfig.parse({
    ...security,
    topic: uniqueName('refused'),
    producerClient: 'platformatic',
  });
  const producer = new PlatformaticProducer(config, {
    tls: tlsOptions(config.ssl),
    connectedBefore,
    retries: 2,
  });
  try {
    const error = await producer.connect().then(
      () => undefined,
      (failure: unknown) => failure,
    );
    expect(error).toBeInstanceOf(WalpurgeError);
    return error as WalpurgeError;
  } finally {
    await producer.disconnect();
  }
}

describe('the platformatic producer and Kafka security', () => {
  it.each(MODES)('%s: publishes through the sink', async (_mode, security) => {
    const topic = uniqueName('secured');
    const sink = createKafkaSink({
      config: KafkaConfig.parse({ ...security(), topic, partitions: 1, producerClient: 'platformatic' }),
      logger: testLogger,
    });
    try {
      await sink.connect();
      await sink.publish([event(1, 1), event(2, 1), event(1, 2)]);
    } finally {
      await sink.close();
    }
    expect(await versions(topic, 3)).toEqual([
      [1, 1],
      [2, 1],
      [1, 2],
    ]);
  });

  it('refuses a wrong SASL password for good (not retriable), naming the options', async () => {
    const error = await refusal({
      brokers: [secured.sasl],
      sasl: { mechanism: 'scram-sha-256', username: user, password: 'wrong-password' },
    });
    expect(error.code).toBe(ErrorCode.KafkaSecurity);
    expect(error.retriable).toBe(false);
    expect(error.message).toContain('SASL: authentication failed');
    expect(error.message).not.toContain('wrong-password');
    expect(error.hint).toContain('kafka.sasl.password');
  });

  it('refuses a mechanism the listener does not offer for good', async () => {
    const error = await refusal({
      brokers: [secured.saslPlainOnly],
      sasl: { mechanism: 'scram-sha-512', username: user, password },
    });
    expect(error.code).toBe(ErrorCode.KafkaSecurity);
    expect(error.retriable).toBe(false);
    expect(error.message).toContain('SASL: the broker does not offer this mechanism');
  });

  it('refuses a broker certificate that the configured CA did not sign for good', async () => {
    const error = await refusal({
      brokers: [secured.ssl],
      ssl: { ca: certificates.otherCaFile, rejectUnauthorized: true },
    });
    expect(error.code).toBe(ErrorCode.KafkaSecurity);
    expect(error.retriable).toBe(false);
    expect(error.message).toMatch(/^cannot connect to Kafka at .*: TLS: /);
    expect(error.hint).toContain('kafka.ssl');
  });

  it('refuses TLS to a plaintext listener at the first connect; later (the settings worked) it is an outage', async () => {
    const tlsToPlaintext = {
      brokers: broker.brokers,
      ssl: { ca: certificates.caFile, rejectUnauthorized: true },
    };
    const first = await refusal(tlsToPlaintext);
    expect(first.code).toBe(ErrorCode.KafkaSecurity);
    expect(first.retriable).toBe(false);
    expect(first.message).toContain('TLS');
    expect(first.hint).toContain('kafka.ssl');
    const later = await refusal(tlsToPlaintext, true);
    expect(later.code).toBe(ErrorCode.KafkaUnavailable);
    expect(later.retriable).toBe(true);
  });

  it('refuses SASL without TLS at a TLS listener at the first connect; later it is an outage', async () => {
    const saslToTls = {
      brokers: [secured.ssl],
      sasl: { mechanism: 'scram-sha-256' as const, username: user, password },
    };
    const first = await refusal(saslToTls);
    expect(first.code).toBe(ErrorCode.KafkaSecurity);
    expect(first.retriable).toBe(false);
    expect(first.hint).toContain('kafka.ssl and kafka.sasl');
    const later = await refusal(saslToTls, true);
    expect(later.retriable).toBe(true);
  });

  it('rides out a broker restart: every event once acknowledged is in the topic, in order per row', async () => {
    const topic = uniqueName('restart');
    const sink = createKafkaSink({
      config: KafkaConfig.parse({
        brokers: broker.brokers,
        topic,
        partitions: 3,
        producerClient: 'platformatic',
      }),
      logger: testLogger,
    });
    const failures: WalpurgeError[] = [];
    let last = 0;
    // As the listener does: a failed publish is replayed after a new connect, from the last acknowledged.
    const publish = async (events: ChangeEvent[]): Promise<void> => {
      for (;;) {
        try {
          await sink.publish(events);
          return;
        } catch (error) {
          expect(error).toBeInstanceOf(WalpurgeError);
          failures.push(error as WalpurgeError);
          await new Promise((resolve) => setTimeout(resolve, 500));
          await sink.connect().catch((connectError: unknown) => failures.push(connectError as WalpurgeError));
        }
      }
    };
    try {
      await sink.connect();
      for (let version = 1; version <= 5; version += 1)
        await publish([1, 2, 3, 4].map((id) => event(id, version)));
      // Publishing all through the restart (SIGTERM, a controlled shutdown, then a start on the same ports).
      let restarted = false;
      const restart = broker.restart().finally(() => {
        restarted = true;
      });
      let version = 5;
      while (!restarted) {
        version += 1;
        await publish([1, 2, 3, 4].map((id) => event(id, version)));
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      await restart;
      version += 1;
      await publish([1, 2, 3, 4].map((id) => event(id, version)));
      last = version;
    } finally {
      await sink.close();
    }
    for (const failure of failures) expect(failure.retriable, failure.message).toBe(true);
    // The restart was seen (a send failed or was retried across it), and more was written after it.
    expect(last).toBeGreaterThan(7);
    // Every record in the topic, replays included (reading only last × 4 stopped before the end).
    const read = await versions(topic, await recordsIn(topic));
    for (const id of [1, 2, 3, 4]) {
      const seen = read.filter(([row]) => row === id).map(([, version]) => version);
      // At least once, in order: each version is the next, or a replay starting over at an earlier one.
      for (let version = 1; version <= last; version += 1) expect(seen, `row ${id}`).toContain(version);
      for (let i = 1; i < seen.length; i += 1)
        expect(
          (seen[i] as number) === (seen[i - 1] as number) + 1 ||
            (seen[i] as number) <= (seen[i - 1] as number),
        ).toBe(true);
    }
  });
});
