import type { Admin } from 'kafkajs';
import type { KafkaClient } from './kafka-client.js';
import type { KafkaConfig } from '@walpurge/config';
import type { Logger, Registry } from '@walpurge/core';
import { KAFKA_DEFAULT_MAX_MESSAGE_BYTES } from '@walpurge/protocol';
import {
  assessDurability,
  DEFAULT_MAX_REPLICATION_FACTOR,
  resolveReplication,
  type Replication,
} from './replication.js';
import { topicRetentionMs } from './topic-config.js';
import { waitForTopicLeaders } from './topic-leaders.js';
import {
  checkTopicDurability,
  liveBrokerCount,
  readTopicReplication,
  watchTopicDurability,
  type TopicDurability,
} from './topic-durability.js';

/** The topics walpurge creates: the listener needs only the change topic, the invalidator all three. */
export type WalpurgeTopic = 'changes' | 'cdn' | 'deadLetters';
export const ALL_WALPURGE_TOPICS: readonly WalpurgeTopic[] = ['changes', 'cdn', 'deadLetters'];

/** The topic's name, as configured. */
export function walpurgeTopicName(config: KafkaConfig, which: WalpurgeTopic): string {
  if (which === 'changes') return config.topic;
  return which === 'cdn' ? config.cdnTopic : config.deadLetterTopic;
}

export interface TopicSpec {
  topic: string;
  numPartitions: number;
  replicationFactor: number;
  configEntries: Array<{ name: string; value: string }>;
}

/**
 * How walpurge creates each of its topics, the same from whichever service starts first. Every topic
 * accepts what kafka.maxMessageBytes lets through (never below Kafka's own default): a change topic
 * created without it would refuse the listener's large events, replayed forever.
 */
export function walpurgeTopicSpec(
  config: KafkaConfig,
  which: WalpurgeTopic,
  replication: Replication,
): TopicSpec {
  const configEntries = [
    {
      name: 'max.message.bytes',
      value: String(Math.max(config.maxMessageBytes, KAFKA_DEFAULT_MAX_MESSAGE_BYTES)),
    },
    { name: 'min.insync.replicas', value: String(replication.minInsyncReplicas) },
  ];
  const { replicationFactor } = replication;
  const topic = walpurgeTopicName(config, which);
  switch (which) {
    case 'changes':
      return { topic, numPartitions: config.partitions, replicationFactor, configEntries };
    case 'cdn':
      // One partition on purpose: one consumer per provider group then paces that provider account's
      // API rate limit (several would each think they own the whole limit). Retention -1: its entries
      // are purges still to do, and a provider paused longer than a finite retention would lose them
      // silently (the lane's group would then restart from the earliest offset left).
      return {
        topic,
        numPartitions: 1,
        replicationFactor,
        configEntries: [...configEntries, { name: 'retention.ms', value: '-1' }],
      };
    case 'deadLetters':
      return { topic, numPartitions: 1, replicationFactor, configEntries };
  }
}

export interface EnsureTopicsOptions {
  logger?: Logger | undefined;
  /** Where walpurge_kafka_topic_unsafe_durability is set. */
  registry?: Registry | undefined;
  /** Default: all three. */
  topics?: readonly WalpurgeTopic[];
  /**
   * Each topic's last durability verdict: pass the same map to watchWalpurgeTopics so that the
   * periodic re-check logs only what changed since start.
   */
  verdicts?: Map<string, string>;
}

export interface EnsuredTopics {
  brokers: number;
  /** What the topics created by this call got; undefined when none was missing. */
  created?: Replication;
  durability: TopicDurability[];
}

/**
 * The one way walpurge creates its topics (listener and invalidator alike): creates the missing
 * ones, never alters existing ones, then checks every one's durability (see checkTopicDurability).
 * Replication: kafka.replicationFactor, else min(3, live brokers); min.insync.replicas to match
 * (see resolveReplication). An existing CDN topic with a finite retention is logged at warn level.
 */
export async function ensureTopics(
  kafka: KafkaClient,
  config: KafkaConfig,
  options: EnsureTopicsOptions = {},
): Promise<EnsuredTopics> {
  const { logger } = options;
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const brokers = await liveBrokerCount(admin);
    const which = options.topics ?? ALL_WALPURGE_TOPICS;
    const names = which.map((topic) => walpurgeTopicName(config, topic));
    const missing = which.filter((topic) => !existing.has(walpurgeTopicName(config, topic)));
    const created = missing.length > 0 ? resolveReplication(config, brokers) : undefined;
    if (created) {
      const made: string[] = [];
      const specs = missing.map((name) => walpurgeTopicSpec(config, name, created));
      // One at a time: kafkajs resolves false as soon as one topic of the request already existed,
      // created meanwhile by another instance.
      for (const topic of specs)
        if (await admin.createTopics({ topics: [topic], waitForLeaders: false })) made.push(topic.topic);
      // Whoever created them, they are not usable (nor readable below) before they have leaders.
      await waitForTopicLeaders(
        admin,
        specs.map((spec) => spec.topic),
      );
      if (made.length > 0) logger?.info({ topics: made, ...created, brokers }, 'created Kafka topics');
      if (
        made.length > 0 &&
        config.replicationFactor === undefined &&
        brokers > 1 &&
        brokers < DEFAULT_MAX_REPLICATION_FACTOR
      )
        logger?.warn(
          { topics: made, brokers, replicationFactor: created.replicationFactor },
          `created Kafka topics with replication factor ${created.replicationFactor}: the cluster lists only ${brokers} live brokers; if one is down, these topics keep fewer replicas for good (Kafka never adds replicas by itself): raise them with kafka-reassign-partitions.sh once it is back`,
        );
    }
    if (which.includes('cdn') && existing.has(config.cdnTopic)) {
      const retentionMs = await topicRetentionMs(admin, config.cdnTopic).catch(() => undefined);
      if (retentionMs !== undefined && retentionMs >= 0)
        logger?.warn(
          { topic: config.cdnTopic, retentionMs },
          'the CDN topic has a finite retention: CDN purges queued longer than that (a provider paused or failing) are lost without a trace',
        );
    }
    const durability = await checkTopicDurability(admin, names, brokers, {
      logger,
      registry: options.registry,
      bootstrap: config.brokers[0] ?? '<broker>',
      previous: options.verdicts,
    });
    return { brokers, ...(created ? { created } : {}), durability };
  } finally {
    await admin.disconnect();
  }
}

/**
 * The periodic re-check of walpurge's topics' durability (see watchTopicDurability), for a role that
 * called ensureTopics with the same options. stop() on shutdown.
 */
export function watchWalpurgeTopics(
  kafka: KafkaClient,
  config: KafkaConfig,
  options: EnsureTopicsOptions & { intervalMs?: number } = {},
): { stop(): void } {
  return watchTopicDurability(
    kafka,
    (options.topics ?? ALL_WALPURGE_TOPICS).map((topic) => walpurgeTopicName(config, topic)),
    {
      logger: options.logger,
      registry: options.registry,
      bootstrap: config.brokers[0] ?? '<broker>',
      previous: options.verdicts,
      ...(options.intervalMs === undefined ? {} : { intervalMs: options.intervalMs }),
    },
  );
}

export interface WalpurgeTopicsState {
  brokers: number;
  /** walpurge's topics that do not exist yet (created at start). */
  missing: Array<{ which: WalpurgeTopic; topic: string }>;
  /** The existing ones, with their replication and its verdict. */
  existing: Array<TopicDurability & { which: WalpurgeTopic }>;
}

/**
 * What `walpurge validate` and `walpurge status` report about walpurge's topics: which exist, and
 * whether their replication makes acks=all meaningless (as the roles warn at start). Throws when the
 * cluster cannot be read.
 */
export async function readWalpurgeTopics(admin: Admin, config: KafkaConfig): Promise<WalpurgeTopicsState> {
  const existingNames = new Set(await admin.listTopics());
  const brokers = await liveBrokerCount(admin);
  const all = ALL_WALPURGE_TOPICS.map((which) => ({ which, topic: walpurgeTopicName(config, which) }));
  const present = all.filter(({ topic }) => existingNames.has(topic));
  const whichOf = new Map(present.map(({ which, topic }) => [topic, which]));
  const replication = await readTopicReplication(
    admin,
    present.map(({ topic }) => topic),
    brokers,
  );
  const bootstrap = config.brokers[0] ?? '<broker>';
  return {
    brokers,
    missing: all.filter(({ topic }) => !existingNames.has(topic)),
    existing: replication.map((topic) => ({
      ...topic,
      which: whichOf.get(topic.topic) as WalpurgeTopic,
      verdict: assessDurability(topic, bootstrap),
    })),
  };
}
