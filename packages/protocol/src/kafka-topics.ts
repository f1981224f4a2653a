/**
 * Kafka's message size limit, as the listener and the CLI read it from a topic (walpurge creates its
 * topics in @walpurge/kafka). Structural types, so this package needs no kafkajs.
 */

/** Kafka's default limit on one record batch (broker message.max.bytes, topic max.message.bytes). */
export const KAFKA_DEFAULT_MAX_MESSAGE_BYTES = 1_048_588;

/** kafkajs ConfigResourceTypes.TOPIC. */
const TOPIC_RESOURCE = 2;

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
