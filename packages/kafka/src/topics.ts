import type { Admin } from 'kafkajs';
import type { KafkaClient } from './kafka-client.js';
import type { KafkaConfig } from '@walpurge/config';
import type { Logger } from '@walpurge/core';
import { walpurgeTopic, type TopicSpec } from '@walpurge/protocol';

/** kafkajs ConfigResourceTypes.TOPIC. */
const TOPIC_RESOURCE = 2;

/**
 * The CDN topic's retention.ms as set (its own or the broker's default), undefined when unknown.
 * -1 keeps entries until deleted by hand.
 */
export async function topicRetentionMs(admin: Admin, topic: string): Promise<number | undefined> {
  const { resources } = await admin.describeConfigs({
    includeSynonyms: false,
    resources: [{ type: TOPIC_RESOURCE, name: topic, configNames: ['retention.ms'] }],
  });
  const entry = resources[0]?.configEntries.find((config) => config.configName === 'retention.ms');
  const value = Number(entry?.configValue);
  return entry?.configValue && Number.isFinite(value) ? value : undefined;
}

/**
 * Creates the change topic, the CDN queue topic and the dead-letter topic when missing (never alters
 * existing ones). The CDN topic is created with retention.ms -1: its entries are purges still to do,
 * and a provider paused longer than a finite retention would lose them silently (the lane's group
 * would then restart from the earliest offset left). An existing CDN topic with a finite retention
 * is logged at warn level.
 */
export async function ensureTopics(kafka: KafkaClient, config: KafkaConfig, logger?: Logger): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    // Both accept what kafka.maxMessageBytes lets through, created exactly as the listener creates the
    // change topic: a change topic created here without it would refuse the listener's large events.
    const topics = [
      walpurgeTopic({
        topic: config.topic,
        numPartitions: config.partitions,
        replicationFactor: config.replicationFactor,
        maxMessageBytes: config.maxMessageBytes,
      }),
      // One partition on purpose: one consumer per provider group then paces that provider
      // account's API rate limit (several would each think they own the whole limit).
      withConfig(
        walpurgeTopic({
          topic: config.cdnTopic,
          numPartitions: 1,
          replicationFactor: config.replicationFactor,
          maxMessageBytes: config.maxMessageBytes,
        }),
        'retention.ms',
        '-1',
      ),
      walpurgeTopic({
        topic: config.deadLetterTopic,
        numPartitions: 1,
        replicationFactor: config.replicationFactor,
        maxMessageBytes: config.maxMessageBytes,
      }),
    ].filter((topic) => !existing.has(topic.topic));
    if (topics.length > 0) {
      try {
        await admin.createTopics({ topics, waitForLeaders: true });
      } catch (error) {
        // Another instance may have created them in between.
        if (!(error instanceof Error) || !/already exists/i.test(error.message)) throw error;
      }
    }
    if (existing.has(config.cdnTopic)) {
      const retentionMs = await topicRetentionMs(admin, config.cdnTopic).catch(() => undefined);
      if (retentionMs !== undefined && retentionMs >= 0)
        logger?.warn(
          { topic: config.cdnTopic, retentionMs },
          'the CDN topic has a finite retention: CDN purges queued longer than that (a provider paused or failing) are lost without a trace',
        );
    }
  } finally {
    await admin.disconnect();
  }
}

function withConfig(topic: TopicSpec, name: string, value: string): TopicSpec {
  return { ...topic, configEntries: [...topic.configEntries, { name, value }] };
}
