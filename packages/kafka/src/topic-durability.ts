import type { Admin } from 'kafkajs';
import { errorMessage, Gauge, type Logger, type Registry } from '@walpurge/core';
import { assessDurability, type DurabilityVerdict, type TopicReplication } from './replication.js';

/** kafkajs ConfigResourceTypes.TOPIC. */
const TOPIC_RESOURCE = 2;

export interface TopicDurability extends TopicReplication {
  verdict: DurabilityVerdict;
}

const UNSAFE_DURABILITY = 'walpurge_kafka_topic_unsafe_durability';

/** The gauge, shared by the listener and the invalidator when both run in one process. */
export function createKafkaTopicMetrics(registry: Registry) {
  const existing = registry.getSingleMetric(UNSAFE_DURABILITY) as Gauge<'topic'> | undefined;
  return {
    unsafeDurability:
      existing ??
      new Gauge<'topic'>({
        name: 'walpurge_kafka_topic_unsafe_durability',
        help: "1 when a walpurge topic's replication makes acks=all meaningless (one replica on a multi-broker cluster, or min.insync.replicas 1 with several replicas), else 0; set at start.",
        labelNames: ['topic'],
        registers: [registry],
      }),
  };
}

/** Live brokers, as the cluster's metadata lists them. */
export async function liveBrokerCount(admin: Admin): Promise<number> {
  return (await admin.describeCluster()).brokers.length;
}

/**
 * Each topic's replication factor (from its partitions' metadata) and effective min.insync.replicas
 * (its own setting, else the broker's: describeConfigs reports the value in force, with its synonyms).
 */
export async function readTopicReplication(
  admin: Admin,
  topics: readonly string[],
  brokers: number,
): Promise<TopicReplication[]> {
  if (topics.length === 0) return [];
  const metadata = await admin.fetchTopicMetadata({ topics: [...topics] });
  const { resources } = await admin.describeConfigs({
    includeSynonyms: true,
    resources: topics.map((name) => ({ type: TOPIC_RESOURCE, name, configNames: ['min.insync.replicas'] })),
  });
  return topics.map((topic) => {
    const partitions = metadata.topics.find((entry) => entry.name === topic)?.partitions ?? [];
    const replicationFactor = Math.min(...partitions.map((partition) => partition.replicas.length));
    const entry = resources
      .find((resource) => resource.resourceName === topic)
      ?.configEntries.find((config) => config.configName === 'min.insync.replicas');
    const value = entry?.configValue ?? entry?.configSynonyms[0]?.configValue;
    // Kafka's own default when nothing says otherwise.
    const minInsyncReplicas = value ? Number(value) : 1;
    return {
      topic,
      replicationFactor: Number.isFinite(replicationFactor) ? replicationFactor : 0,
      minInsyncReplicas,
      brokers,
    };
  });
}

export interface DurabilityCheckOptions {
  logger?: Logger | undefined;
  registry?: Registry | undefined;
  /** Named in the fix commands (--bootstrap-server). */
  bootstrap: string;
}

/**
 * Warns (one line per topic, with the command that fixes it) about topics whose replication makes
 * acks=all meaningless, and sets the gauge. Never fails: reading topic settings needs Describe and
 * DescribeConfigs, which a narrow ACL may not grant, and the check only advises.
 */
export async function checkTopicDurability(
  admin: Admin,
  topics: readonly string[],
  brokers: number,
  options: DurabilityCheckOptions,
): Promise<TopicDurability[]> {
  const { logger } = options;
  let replication: TopicReplication[];
  try {
    replication = await readTopicReplication(admin, topics, brokers);
  } catch (error) {
    logger?.warn(
      { topics, err: error },
      `could not read the Kafka topics' replication (needs Describe and DescribeConfigs): their durability is unchecked: ${errorMessage(error)}`,
    );
    return [];
  }
  const gauge = options.registry ? createKafkaTopicMetrics(options.registry).unsafeDurability : undefined;
  const checked = replication.map((topic) => ({
    ...topic,
    verdict: assessDurability(topic, options.bootstrap),
  }));
  const notes = new Set<string>();
  for (const { verdict, ...topic } of checked) {
    gauge?.set({ topic: topic.topic }, verdict.safe ? 0 : 1);
    if (verdict.safe) {
      if (verdict.note) notes.add(verdict.note);
      continue;
    }
    logger?.warn(
      { ...topic, fix: verdict.fix },
      `Kafka topic ${topic.topic}: acks=all is meaningless: ${verdict.reason}`,
    );
  }
  for (const note of notes) logger?.info({ topics }, note);
  return checked;
}
