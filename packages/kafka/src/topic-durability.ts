import type { Admin } from 'kafkajs';
import { Counter, errorMessage, Gauge, type Logger, type Registry } from '@walpurge/core';
import type { KafkaClient } from './kafka-client.js';
import {
  assessDurability,
  unsafeHeadline,
  type DurabilityVerdict,
  type TopicReplication,
} from './replication.js';
import { topicConfigValue } from './topic-config.js';

export interface TopicDurability extends TopicReplication {
  verdict: DurabilityVerdict;
}

const UNSAFE_DURABILITY = 'walpurge_kafka_topic_unsafe_durability';
const CHECK_ERRORS = 'walpurge_kafka_topic_durability_check_errors_total';

/** How often a running role re-reads its topics' replication, so the gauge follows an operator's fix. */
export const DURABILITY_RECHECK_MS = 5 * 60_000;

/** The metrics, shared by the listener and the invalidator when both run in one process. */
export function createKafkaTopicMetrics(registry: Registry) {
  return {
    unsafeDurability:
      (registry.getSingleMetric(UNSAFE_DURABILITY) as Gauge<'topic'> | undefined) ??
      new Gauge<'topic'>({
        name: 'walpurge_kafka_topic_unsafe_durability',
        help: "1 when a walpurge topic's replication makes acks=all meaningless (one replica on a multi-broker cluster, min.insync.replicas 1 with several replicas) or refuses every acks=all write (min.insync.replicas above the replication factor), else 0; set at start and re-checked every 5 minutes.",
        labelNames: ['topic'],
        registers: [registry],
      }),
    checkErrors:
      (registry.getSingleMetric(CHECK_ERRORS) as Counter | undefined) ??
      new Counter({
        name: 'walpurge_kafka_topic_durability_check_errors_total',
        help: "Periodic re-checks of the Kafka topics' replication that failed (cluster unreachable, Describe or DescribeConfigs denied); the gauge then keeps its last value.",
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
 * (its own setting, else the broker's). A topic whose metadata lists no partition (being created or
 * deleted) is left out: its replication is unknown, not 0.
 */
export async function readTopicReplication(
  admin: Admin,
  topics: readonly string[],
  brokers: number,
): Promise<TopicReplication[]> {
  if (topics.length === 0) return [];
  const metadata = await admin.fetchTopicMetadata({ topics: [...topics] });
  const minInsync = await topicConfigValue(admin, topics, 'min.insync.replicas');
  return topics.flatMap((topic) => {
    const partitions = metadata.topics.find((entry) => entry.name === topic)?.partitions ?? [];
    if (partitions.length === 0) return [];
    const replicationFactor = Math.min(...partitions.map((partition) => partition.replicas.length));
    // Kafka's own default when nothing says otherwise.
    const minInsyncReplicas = Number(minInsync.get(topic) ?? 1);
    return [{ topic, replicationFactor, minInsyncReplicas, brokers }];
  });
}

export interface DurabilityCheckOptions {
  logger?: Logger | undefined;
  registry?: Registry | undefined;
  /** Named in the fix commands (--bootstrap-server). */
  bootstrap: string;
  /** The verdicts of the previous check: a topic whose verdict is unchanged is not logged again. */
  previous?: Map<string, string> | undefined;
}

/**
 * Notes already said, per metrics registry: once per process, where the listener and the
 * invalidator share one registry (embedded mode).
 */
const notesSaid = new WeakMap<object, Set<string>>();
const unregistered = {};

function firstTime(registry: Registry | undefined, note: string): boolean {
  const key = registry ?? unregistered;
  const said = notesSaid.get(key) ?? new Set<string>();
  notesSaid.set(key, said);
  if (said.has(note)) return false;
  said.add(note);
  return true;
}

/** The verdict's log line (level, message), or undefined when there is nothing to say. */
function describeVerdict(topic: string, verdict: DurabilityVerdict): ['warn', string] | undefined {
  if (!verdict.safe)
    return ['warn', `Kafka topic ${topic}: ${unsafeHeadline(verdict.kind)}: ${verdict.reason}`];
  if (verdict.fewerReplicas)
    return [
      'warn',
      `Kafka topic ${topic} has fewer replicas than the cluster allows: ${verdict.fewerReplicas.reason}`,
    ];
  return undefined;
}

/**
 * Warns (one line per topic, with the command that fixes it) about topics whose replication makes
 * acks=all meaningless or refused, or that have fewer replicas than the cluster allows, and sets the
 * gauge (unsafe ones only). Throws when the topics cannot be read (needs Describe and DescribeConfigs).
 */
export async function assessTopicDurability(
  admin: Admin,
  topics: readonly string[],
  brokers: number,
  options: DurabilityCheckOptions,
): Promise<TopicDurability[]> {
  const { logger, previous } = options;
  const replication = await readTopicReplication(admin, topics, brokers);
  const gauge = options.registry ? createKafkaTopicMetrics(options.registry).unsafeDurability : undefined;
  const checked = replication.map((topic) => ({
    ...topic,
    verdict: assessDurability(topic, options.bootstrap),
  }));
  for (const { verdict, ...topic } of checked) {
    gauge?.set({ topic: topic.topic }, verdict.safe ? 0 : 1);
    const said = describeVerdict(topic.topic, verdict);
    const key = said?.[1] ?? 'ok';
    const before = previous?.get(topic.topic);
    previous?.set(topic.topic, key);
    if (before === key) continue;
    if (said) {
      const fix = verdict.safe ? verdict.fewerReplicas?.fix : verdict.fix;
      logger?.warn({ ...topic, fix }, said[1]);
    } else if (before !== undefined)
      logger?.info({ ...topic }, `Kafka topic ${topic.topic}: replication now safe`);
    if (verdict.safe && verdict.note && firstTime(options.registry, verdict.note))
      logger?.info({ topics }, verdict.note);
  }
  return checked;
}

/**
 * assessTopicDurability at start. Never fails: reading topic settings needs Describe and
 * DescribeConfigs, which a narrow ACL may not grant, and the check only advises.
 */
export async function checkTopicDurability(
  admin: Admin,
  topics: readonly string[],
  brokers: number,
  options: DurabilityCheckOptions,
): Promise<TopicDurability[]> {
  try {
    return await assessTopicDurability(admin, topics, brokers, options);
  } catch (error) {
    options.logger?.warn(
      { topics, err: error },
      `could not read the Kafka topics' replication (needs Describe and DescribeConfigs): their durability is unchecked: ${errorMessage(error)}`,
    );
    return [];
  }
}

export interface DurabilityWatchOptions extends DurabilityCheckOptions {
  intervalMs?: number;
}

/**
 * Re-checks the topics' replication every few minutes, so walpurge_kafka_topic_unsafe_durability (and
 * its alert) clears once an operator fixed a topic. Off the purge path: its own short-lived admin
 * client, a timer that never keeps the process alive; a failure is logged at debug and counted.
 */
export function watchTopicDurability(
  kafka: KafkaClient,
  topics: readonly string[],
  options: DurabilityWatchOptions,
): { stop(): void } {
  const previous = options.previous ?? new Map<string, string>();
  const errors = options.registry ? createKafkaTopicMetrics(options.registry).checkErrors : undefined;
  let running = false;
  const check = async (): Promise<void> => {
    if (running) return;
    running = true;
    const admin = kafka.admin();
    try {
      await admin.connect();
      await assessTopicDurability(admin, topics, await liveBrokerCount(admin), { ...options, previous });
    } catch (error) {
      errors?.inc();
      options.logger?.debug(
        { topics, err: error },
        `re-checking the Kafka topics' replication failed: ${errorMessage(error)}`,
      );
    } finally {
      await admin.disconnect().catch(() => {});
      running = false;
    }
  };
  const timer = setInterval(() => void check(), options.intervalMs ?? DURABILITY_RECHECK_MS);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
