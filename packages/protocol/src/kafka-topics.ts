/**
 * The topics walpurge creates, the same from whichever service starts first: the listener and the
 * invalidator both create the change topic when missing, and a topic created without the listener's
 * size limit refuses its large events (replayed forever). Structural types, so this package needs no
 * kafkajs.
 */

/** Kafka's default limit on one record batch (broker message.max.bytes, topic max.message.bytes). */
export const KAFKA_DEFAULT_MAX_MESSAGE_BYTES = 1_048_588;

/** kafkajs ConfigResourceTypes.TOPIC. */
const TOPIC_RESOURCE = 2;

export interface WalpurgeTopicSettings {
  topic: string;
  numPartitions: number;
  replicationFactor: number;
  /** kafka.maxMessageBytes: the largest message walpurge produces to it. */
  maxMessageBytes: number;
}

export interface TopicSpec {
  topic: string;
  numPartitions: number;
  replicationFactor: number;
  configEntries: Array<{ name: string; value: string }>;
}

/** A topic that accepts every message walpurge may send (never below Kafka's own default). */
export function walpurgeTopic(settings: WalpurgeTopicSettings): TopicSpec {
  return {
    topic: settings.topic,
    numPartitions: settings.numPartitions,
    replicationFactor: settings.replicationFactor,
    configEntries: [
      {
        name: 'max.message.bytes',
        value: String(Math.max(settings.maxMessageBytes, KAFKA_DEFAULT_MAX_MESSAGE_BYTES)),
      },
    ],
  };
}

/** The part of a kafkajs Admin that reads a topic's settings. */
export interface TopicConfigReader {
  describeConfigs(request: {
    includeSynonyms: boolean;
    resources: Array<{ type: number; name: string; configNames?: string[] }>;
  }): Promise<{
    resources: Array<{ configEntries: Array<{ configName: string; configValue: string | null }> }>;
  }>;
}

/** The topic's effective max.message.bytes (its own setting, else the broker's), undefined if unknown. */
export async function topicMaxMessageBytes(
  admin: TopicConfigReader,
  topic: string,
): Promise<number | undefined> {
  const { resources } = await admin.describeConfigs({
    includeSynonyms: false,
    resources: [{ type: TOPIC_RESOURCE, name: topic, configNames: ['max.message.bytes'] }],
  });
  const entry = resources[0]?.configEntries.find((config) => config.configName === 'max.message.bytes');
  const value = Number(entry?.configValue);
  return entry?.configValue && Number.isFinite(value) ? value : undefined;
}
