import { Kafka, logLevel, type LogEntry, type SASLOptions } from 'kafkajs';
import type { KafkaConfig } from '@walpurge/config';
import type { Logger } from '@walpurge/core';
import { walpurgeTopic } from '@walpurge/protocol';

/** kafkajs with its log lines routed into our (redacting) pino logger. */
export function createKafka(config: KafkaConfig, logger: Logger): Kafka {
  const log = logger.child({ component: 'kafkajs' });
  const sasl: SASLOptions | undefined = config.sasl
    ? ({
        mechanism: config.sasl.mechanism,
        username: config.sasl.username,
        password: config.sasl.password,
      } as SASLOptions)
    : undefined;
  return new Kafka({
    clientId: config.clientId,
    brokers: config.brokers,
    ssl: config.ssl,
    ...(sasl ? { sasl } : {}),
    logLevel: logLevel.WARN,
    logCreator: () => (entry: LogEntry) => {
      const { message, ...rest } = entry.log;
      const fields = { namespace: entry.namespace, ...rest };
      if (entry.level === logLevel.ERROR) log.error(fields, message);
      else if (entry.level === logLevel.WARN) log.warn(fields, message);
      else log.debug(fields, message);
    },
  });
}

/** Creates the change topic, the CDN queue topic and the dead-letter topic when missing (never alters existing ones). */
export async function ensureTopics(kafka: Kafka, config: KafkaConfig): Promise<void> {
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
      walpurgeTopic({
        topic: config.cdnTopic,
        numPartitions: 1,
        replicationFactor: config.replicationFactor,
        maxMessageBytes: config.maxMessageBytes,
      }),
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
  } finally {
    await admin.disconnect();
  }
}
