import type { ConfigProblem, WalpurgeConfig } from '@walpurge/config';
import { errorMessage } from '@walpurge/core';
import { readWalpurgeTopics, replicationFor } from '@walpurge/kafka';
import { kafkaClient } from '../status/kafka-status.js';
import { connectKafka } from './connection-errors.js';

type ProblemAt = (path: ReadonlyArray<PropertyKey>, message: string) => ConfigProblem;

const TOPIC_KEYS = { changes: 'topic', cdn: 'cdnTopic', deadLetters: 'deadLetterTopic' } as const;

/**
 * What the roles check about walpurge's topics at start, before they start: a topic still to create
 * that the replication settings cannot give (a problem: the roles would refuse to start), and an
 * existing topic whose replication makes acks=all meaningless (a warning, as the roles log it). An
 * unreachable cluster is only a warning: the other checks need no Kafka.
 */
export async function kafkaTopicChecks(
  config: WalpurgeConfig,
  problemAt: ProblemAt,
): Promise<{ problems: ConfigProblem[]; warnings: ConfigProblem[] }> {
  const kafka = config.kafka;
  if (config.transport !== 'kafka' || !kafka) return { problems: [], warnings: [] };
  const admin = kafkaClient(kafka, 'validate').admin();
  try {
    await connectKafka(admin, kafka.brokers);
    const state = await readWalpurgeTopics(admin, kafka);
    const problems: ConfigProblem[] = [];
    const replication = state.missing.length > 0 ? replicationFor(kafka, state.brokers) : undefined;
    if (replication && 'setting' in replication)
      problems.push(
        problemAt(['kafka', replication.setting], `${replication.message} (fix: ${replication.hint})`),
      );
    const warnings = state.existing.flatMap(({ verdict, which, ...topic }) =>
      verdict.safe
        ? []
        : [
            problemAt(
              ['kafka', TOPIC_KEYS[which]],
              `Kafka topic ${topic.topic} (replication factor ${topic.replicationFactor}, min.insync.replicas ${topic.minInsyncReplicas}, ${topic.brokers} brokers): acks=all is meaningless: ${verdict.reason} (fix: ${verdict.fix})`,
            ),
          ],
    );
    return { problems, warnings };
  } catch (error) {
    return {
      problems: [],
      warnings: [
        problemAt(
          ['kafka', 'brokers'],
          `could not check the Kafka topics' replication: ${errorMessage(error)}`,
        ),
      ],
    };
  } finally {
    await admin.disconnect().catch(() => {});
  }
}
