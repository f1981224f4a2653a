import type { KafkaConfig } from '@walpurge/config';
import { errorMessage } from '@walpurge/core';
import { createKafka, readWalpurgeTopics, type KafkaClient, type TopicDurability } from '@walpurge/kafka';
import { connectKafka } from '../live/connection-errors.js';

export interface KafkaStatus {
  topic: string;
  consumerGroup: string;
  /** Sum over partitions of (high watermark − committed offset); null when the group never committed. */
  consumerLag: number | null;
  partitions: Array<{ partition: number; high: number; committed: number | null; lag: number }>;
  deadLetterTopic: string;
  /** Messages currently held by the dead-letter topic (high − low watermarks). */
  deadLetters: number;
  /** Live brokers in the cluster (0 when durabilityError says why it is unknown). */
  brokers: number;
  /** walpurge's existing topics: replication and whether it makes acks=all meaningless. */
  durability: TopicDurability[];
  /** Why the topics' replication could not be read (Describe or DescribeConfigs denied, say). */
  durabilityError?: string;
}

/** The CLI's Kafka clients: quiet (errors are reported by the command), and quick to give up. */
export function kafkaClient(config: KafkaConfig, clientSuffix: string): KafkaClient {
  return createKafka(config, {
    clientSuffix,
    connectionTimeoutMs: 3_000,
    retry: { retries: 2, initialRetryTime: 200 },
  });
}

async function topicSize(admin: ReturnType<KafkaClient['admin']>, topic: string): Promise<number> {
  const topics = await admin.listTopics();
  if (!topics.includes(topic)) return 0;
  const offsets = await admin.fetchTopicOffsets(topic);
  return offsets.reduce((sum, partition) => sum + (Number(partition.high) - Number(partition.low)), 0);
}

async function topicDurability(
  admin: ReturnType<KafkaClient['admin']>,
  config: KafkaConfig,
): Promise<Pick<KafkaStatus, 'brokers' | 'durability' | 'durabilityError'>> {
  try {
    const { brokers, existing } = await readWalpurgeTopics(admin, config);
    return { brokers, durability: existing.map(({ which: _which, ...topic }) => topic) };
  } catch (error) {
    // Lag and dead letters need less than DescribeConfigs: they are still worth showing.
    return { brokers: 0, durability: [], durabilityError: errorMessage(error) };
  }
}

export async function readKafkaStatus(config: KafkaConfig): Promise<KafkaStatus> {
  const admin = kafkaClient(config, 'status').admin();
  await connectKafka(admin, config.brokers);
  try {
    const topics = await admin.listTopics();
    const partitions: KafkaStatus['partitions'] = [];
    let consumerLag: number | null = null;
    if (topics.includes(config.topic)) {
      const high = await admin.fetchTopicOffsets(config.topic);
      const committed = await admin.fetchOffsets({ groupId: config.consumerGroup, topics: [config.topic] });
      const byPartition = new Map(
        (committed[0]?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]),
      );
      for (const partition of high) {
        const offset = byPartition.get(partition.partition);
        const committedOffset = offset === undefined || offset < 0 ? null : offset;
        const lag = Number(partition.high) - (committedOffset ?? Number(partition.low));
        partitions.push({
          partition: partition.partition,
          high: Number(partition.high),
          committed: committedOffset,
          lag,
        });
      }
      if (partitions.some((p) => p.committed !== null))
        consumerLag = partitions.reduce((sum, p) => sum + p.lag, 0);
    }
    return {
      topic: config.topic,
      consumerGroup: config.consumerGroup,
      consumerLag,
      partitions,
      deadLetterTopic: config.deadLetterTopic,
      deadLetters: await topicSize(admin, config.deadLetterTopic),
      ...(await topicDurability(admin, config)),
    };
  } finally {
    await admin.disconnect().catch(() => {});
  }
}
