/**
 * Topic replication on a real 3-broker cluster (one combined controller+broker and two brokers):
 * what walpurge creates, what it warns about at listener and invalidator start, what it refuses,
 * and what `validate` and `status` show.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import kafkajs, { type Admin } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, inject, it, onTestFinished } from 'vitest';
import { WalpurgeConfig } from '@walpurge/config';
import { createLogger, createMetricsRegistry, type Registry } from '@walpurge/core';
import { createInvalidator } from '@walpurge/invalidator';
import { readTopicReplication } from '@walpurge/kafka';
import { createKafkaSink } from '@walpurge/listener';
import { startLocalKafkaCluster, uniqueName, waitFor, type LocalKafkaCluster } from '@walpurge/testing';
import { runCli } from './cli.js';
import { captureIo } from './testing/capture-io.js';

const services = inject('services');
const dir = mkdtempSync(join(tmpdir(), 'walpurge-kafka-durability-'));
let cluster: LocalKafkaCluster;
let admin: Admin;

beforeAll(async () => {
  cluster = await startLocalKafkaCluster({ brokers: 3 });
  admin = new kafkajs.Kafka({ brokers: cluster.brokers, logLevel: kafkajs.logLevel.NOTHING }).admin();
  await admin.connect();
}, 300_000);
afterAll(async () => {
  await admin?.disconnect().catch(() => {});
  await cluster?.stop();
  rmSync(dir, { recursive: true, force: true });
}, 60_000);

interface LogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

function capturingLogger(): { logger: ReturnType<typeof createLogger>; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = createLogger({
    level: 'info',
    destination: { write: (line: string) => lines.push(JSON.parse(line) as LogLine) },
  });
  return { logger, lines };
}

function names(label: string) {
  const topic = uniqueName(label);
  return {
    topic,
    deadLetterTopic: `${topic}_dlq`,
    cdnTopic: `${topic}_cdn`,
    consumerGroup: `${topic}_group`,
  };
}

function config(topics: ReturnType<typeof names>, kafka: Record<string, unknown> = {}): WalpurgeConfig {
  return WalpurgeConfig.parse({
    transport: 'kafka',
    kafka: { brokers: cluster.brokers, partitions: 2, ...topics, ...kafka },
    redis: { url: services.redisUrl, keyPrefix: `${topics.topic}:` },
    database: { url: services.databaseUrl, slot: topics.topic.replaceAll('-', '_') },
    invalidator: { sessionTimeoutMs: 6_000, stopTimeoutMs: 5_000 },
    rules: [],
  });
}

/** The listener's start: its sink creates (or checks) the change topic. */
async function startListenerSink(
  walpurge: WalpurgeConfig,
  logger = capturingLogger().logger,
  registry?: Registry,
) {
  const sink = createKafkaSink({ config: walpurge.kafka!, logger, ...(registry ? { registry } : {}) });
  try {
    await sink.connect();
  } finally {
    await sink.close();
  }
}

/** The invalidator's start: creates (or checks) all three topics, then joins its group. */
async function startInvalidator(
  walpurge: WalpurgeConfig,
  logger = capturingLogger().logger,
  registry = createMetricsRegistry({ defaultMetrics: false }),
) {
  const invalidator = createInvalidator({
    config: walpurge,
    logger,
    registry,
    consume: 'kafka',
    runCdnLane: false,
  });
  try {
    await invalidator.start(new AbortController().signal);
  } finally {
    await invalidator.stop();
  }
}

async function unsafeGauge(registry: Registry): Promise<Record<string, number>> {
  const metric = await registry.getSingleMetric('walpurge_kafka_topic_unsafe_durability')?.get();
  return Object.fromEntries(
    (metric?.values ?? []).map((value) => [String(value.labels['topic']), value.value]),
  );
}

async function validate(walpurge: WalpurgeConfig): Promise<{
  code: number;
  problems: Array<{ path: string; message: string }>;
  warnings: Array<{ path: string; message: string }>;
}> {
  const file = join(dir, `${uniqueName('config')}.yaml`);
  writeFileSync(file, JSON.stringify({ transport: 'kafka', kafka: walpurge.kafka, rules: [] }));
  const io = captureIo();
  const code = await runCli(['validate', '--config', file, '--json'], io);
  return {
    code,
    ...(JSON.parse(io.out()) as {
      problems: Array<{ path: string; message: string }>;
      warnings: Array<{ path: string; message: string }>;
    }),
  };
}

describe('Kafka topic replication on a 3-broker cluster', () => {
  it('creates every topic with replication factor 3 and min.insync.replicas 2, from the listener and the invalidator alike', async () => {
    const topics = names('durable');
    const walpurge = config(topics);
    const listenerLog = capturingLogger();
    await startListenerSink(walpurge, listenerLog.logger);
    expect(await readTopicReplication(admin, [topics.topic], 3)).toEqual([
      { topic: topics.topic, replicationFactor: 3, minInsyncReplicas: 2, brokers: 3 },
    ]);
    const invalidatorLog = capturingLogger();
    const registry = createMetricsRegistry({ defaultMetrics: false });
    await startInvalidator(walpurge, invalidatorLog.logger, registry);
    const all = [topics.topic, topics.cdnTopic, topics.deadLetterTopic];
    expect(await readTopicReplication(admin, all, 3)).toEqual(
      all.map((topic) => ({ topic, replicationFactor: 3, minInsyncReplicas: 2, brokers: 3 })),
    );
    expect(await unsafeGauge(registry)).toEqual(Object.fromEntries(all.map((topic) => [topic, 0])));
    const unsafeLines = [...listenerLog.lines, ...invalidatorLog.lines].filter((line) =>
      line.msg.includes('acks=all'),
    );
    expect(unsafeLines).toEqual([]);
    expect((await validate(walpurge)).warnings).toEqual([]);

    // Every topic exists: an impossible replication factor blocks nothing yet, but is worth a warning.
    const tooLarge = await validate(config(topics, { replicationFactor: 5 }));
    expect(tooLarge.code).toBe(0);
    expect(tooLarge.warnings).toEqual([
      expect.objectContaining({
        path: 'kafka.replicationFactor',
        message: expect.stringContaining(
          'has 3 live brokers: walpurge cannot create its topics (fix: set kafka.replicationFactor to 3 or less',
        ),
      }),
    ]);
  });

  it('starts every role when several start at once on topics none has created yet (a first deploy)', async () => {
    // The loser of the creation race used to read the topic's metadata from a broker the new topic
    // had not reached yet, and exit with "This server does not host this topic-partition".
    for (let round = 0; round < 3; round++) {
      const walpurge = config(names(`durability-race-${round}`));
      await Promise.all([
        startInvalidator(walpurge),
        startInvalidator(walpurge),
        startListenerSink(walpurge),
        startListenerSink(walpurge),
      ]);
      const [metadata] = (await admin.fetchTopicMetadata({ topics: [walpurge.kafka!.topic] })).topics;
      expect(metadata?.partitions.map((partition) => partition.replicas.length)).toEqual([3, 3]);
    }
  });

  it('refuses in validate, and warns and counts at start, a topic whose min.insync.replicas is above its replication factor; warns about fewer replicas than the cluster allows', async () => {
    const topics = names('refused');
    await admin.createTopics({
      topics: [
        {
          topic: topics.topic,
          numPartitions: 1,
          replicationFactor: 2,
          configEntries: [{ name: 'min.insync.replicas', value: '3' }],
        },
        {
          topic: topics.deadLetterTopic,
          numPartitions: 1,
          replicationFactor: 2,
          configEntries: [{ name: 'min.insync.replicas', value: '2' }],
        },
      ],
      waitForLeaders: true,
    });
    const walpurge = config(topics);
    const { logger, lines } = capturingLogger();
    const registry = createMetricsRegistry({ defaultMetrics: false });
    await startListenerSink(walpurge, logger, registry);
    expect(lines.filter((line) => line.level === 40).map((line) => line.msg)).toEqual([
      `Kafka topic ${topics.topic}: every acks=all write is refused: min.insync.replicas is 3, above its 2 replicas: Kafka refuses every acks=all write (NOT_ENOUGH_REPLICAS) and the listener retries forever, holding its replication slot`,
    ]);
    expect(await unsafeGauge(registry)).toEqual({ [topics.topic]: 1 });

    const validated = await validate(walpurge);
    expect(validated.code).toBe(1);
    expect(validated.problems).toEqual([
      expect.objectContaining({
        path: 'kafka.topic',
        message: expect.stringContaining(
          `Kafka topic ${topics.topic} (replication factor 2, min.insync.replicas 3, 3 brokers): every acks=all write is refused`,
        ),
      }),
    ]);
    expect(validated.warnings).toEqual([
      expect.objectContaining({
        path: 'kafka.deadLetterTopic',
        message: expect.stringContaining(
          `Kafka topic ${topics.deadLetterTopic} (replication factor 2, min.insync.replicas 2, 3 brokers): fewer replicas than the cluster allows`,
        ),
      }),
    ]);
  });

  it('warns at listener and invalidator start about an existing topic with min.insync.replicas 1, counts it, and validate and status show it', async () => {
    const topics = names('unsafe');
    // Created by hand: replication factor 3, min.insync.replicas left to the broker default (1).
    await admin.createTopics({
      topics: [{ topic: topics.topic, numPartitions: 2, replicationFactor: 3 }],
      waitForLeaders: true,
    });
    const walpurge = config(topics);
    const expected = {
      topic: topics.topic,
      replicationFactor: 3,
      minInsyncReplicas: 1,
      brokers: 3,
      fix: `kafka-configs.sh --bootstrap-server ${cluster.brokers[0]} --alter --entity-type topics --entity-name ${topics.topic} --add-config min.insync.replicas=2`,
    };
    for (const start of [startListenerSink, startInvalidator]) {
      const { logger, lines } = capturingLogger();
      const registry = createMetricsRegistry({ defaultMetrics: false });
      await start(walpurge, logger, registry);
      const warnings = lines.filter(
        (line) => line.level === 40 && line.msg.includes('acks=all is meaningless'),
      );
      expect(warnings, start.name).toEqual([expect.objectContaining(expected)]);
      expect(warnings[0]?.msg).toBe(
        `Kafka topic ${topics.topic}: acks=all is meaningless: min.insync.replicas is 1 with 3 replicas: once the in-sync replicas shrink to the leader, acks=all waits for the leader alone`,
      );
      expect((await unsafeGauge(registry))[topics.topic], start.name).toBe(1);
    }

    const validated = await validate(walpurge);
    expect(validated.code).toBe(0);
    expect(validated.problems).toEqual([]);
    expect(validated.warnings).toEqual([
      expect.objectContaining({
        path: 'kafka.topic',
        message: `Kafka topic ${topics.topic} (replication factor 3, min.insync.replicas 1, 3 brokers): acks=all is meaningless: min.insync.replicas is 1 with 3 replicas: once the in-sync replicas shrink to the leader, acks=all waits for the leader alone (fix: ${expected.fix})`,
      }),
    ]);

    const file = join(dir, `${uniqueName('status')}.yaml`);
    writeFileSync(
      file,
      JSON.stringify({ transport: 'kafka', kafka: walpurge.kafka, database: walpurge.database, rules: [] }),
    );
    const io = captureIo();
    expect(await runCli(['status', '--config', file], io)).toBe(0);
    expect(io.out()).toMatch(
      new RegExp(
        `topic durability +${topics.topic}: acks=all is meaningless \\(replication factor 3, min.insync.replicas 1;`,
      ),
    );
  });

  it('refuses an explicit replication factor above the broker count at start, naming both numbers; validate says so too', async () => {
    const topics = names('toolarge');
    const walpurge = config(topics, { replicationFactor: 5 });
    const message = `kafka.replicationFactor is 5 but the Kafka cluster at ${cluster.brokers.join(', ')} has 3 live brokers: walpurge cannot create its topics`;
    await expect(startListenerSink(walpurge)).rejects.toThrow(message);
    await expect(startInvalidator(walpurge)).rejects.toThrow(message);
    expect(await admin.listTopics()).not.toContain(topics.topic);
    const validated = await validate(walpurge);
    expect(validated.code).toBe(1);
    expect(validated.problems).toEqual([
      expect.objectContaining({ path: 'kafka.replicationFactor', message: expect.stringContaining(message) }),
    ]);
  });
  // Last: it changes the cluster-wide default the other cases rely on (restored when it ends).
  it("counts the brokers' default min.insync.replicas for a topic without its own", async () => {
    const topics = names('brokerdefault');
    await admin.createTopics({
      topics: [{ topic: topics.topic, numPartitions: 1, replicationFactor: 3 }],
      waitForLeaders: true,
    });
    // Each broker's own default (kafkajs ConfigResourceTypes.BROKER; it refuses the cluster-wide one).
    const { brokers } = await admin.describeCluster();
    const setBrokerDefault = async (configEntries: Array<{ name: string; value: string }>) => {
      await admin.alterConfigs({
        validateOnly: false,
        resources: brokers.map(({ nodeId }) => ({ type: 4, name: String(nodeId), configEntries })),
      });
      const expected = Number(configEntries[0]?.value ?? 1);
      await waitFor('the brokers to apply the default', async () => {
        const [replication] = await readTopicReplication(admin, [topics.topic], 3);
        return replication?.minInsyncReplicas === expected;
      });
    };
    // Restored (no dynamic broker setting, as the cluster started) whatever the outcome.
    onTestFinished(() => setBrokerDefault([]));
    await setBrokerDefault([{ name: 'min.insync.replicas', value: '2' }]);
    const { logger, lines } = capturingLogger();
    const registry = createMetricsRegistry({ defaultMetrics: false });
    await startListenerSink(config(topics), logger, registry);
    expect(lines.filter((line) => line.msg.includes('acks=all'))).toEqual([]);
    expect(await unsafeGauge(registry)).toEqual({ [topics.topic]: 0 });
  });
});
