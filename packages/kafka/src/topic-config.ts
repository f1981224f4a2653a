import type { Admin } from 'kafkajs';

/** kafkajs ConfigResourceTypes.TOPIC. */
export const TOPIC_RESOURCE = 2;

/** The part of a kafkajs Admin that reads topic settings. */
export type TopicConfigReader = Pick<Admin, 'describeConfigs'>;

/**
 * One setting's value in force for each topic (its own, else the broker default: describeConfigs with
 * synonyms reports both), by topic name; a topic Kafka reports nothing for is absent.
 */
export async function topicConfigValue(
  admin: TopicConfigReader,
  topics: readonly string[],
  name: string,
): Promise<Map<string, string>> {
  const values = new Map<string, string>();
  if (topics.length === 0) return values;
  const { resources } = await admin.describeConfigs({
    includeSynonyms: true,
    resources: topics.map((topic) => ({ type: TOPIC_RESOURCE, name: topic, configNames: [name] })),
  });
  for (const resource of resources) {
    const entry = resource.configEntries.find((config) => config.configName === name);
    const value = entry?.configValue ?? entry?.configSynonyms[0]?.configValue;
    if (value !== undefined && value !== null && value !== '') values.set(resource.resourceName, value);
  }
  return values;
}

/** A numeric topic setting in force, undefined when unknown. */
async function numericTopicConfig(
  admin: TopicConfigReader,
  topic: string,
  name: string,
): Promise<number | undefined> {
  const value = Number((await topicConfigValue(admin, [topic], name)).get(topic));
  return Number.isFinite(value) ? value : undefined;
}

/** The topic's effective max.message.bytes (its own setting, else the broker's), undefined if unknown. */
export function topicMaxMessageBytes(admin: TopicConfigReader, topic: string): Promise<number | undefined> {
  return numericTopicConfig(admin, topic, 'max.message.bytes');
}

/**
 * The CDN topic's retention.ms as set (its own or the broker's default), undefined when unknown.
 * -1 keeps entries until deleted by hand.
 */
export function topicRetentionMs(admin: TopicConfigReader, topic: string): Promise<number | undefined> {
  return numericTopicConfig(admin, topic, 'retention.ms');
}
