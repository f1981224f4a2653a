import type { ConfigProblem, WalpurgeConfig } from '@walpurge/config';
import { errorMessage, isWalpurgeError, redactSecrets } from '@walpurge/core';
import { readWalpurgeTopics, replicationFor, unsafeHeadline } from '@walpurge/kafka';
import { kafkaClient } from '../status/kafka-status.js';
import { connectKafka } from './connection-errors.js';

type ProblemAt = (path: ReadonlyArray<PropertyKey>, message: string) => ConfigProblem;

const TOPIC_KEYS = { changes: 'topic', cdn: 'cdnTopic', deadLetters: 'deadLetterTopic' } as const;

/**
 * What the roles check about walpurge's topics at start, before they start: a topic still to create
 * that the replication settings cannot give (a problem: the roles would refuse to start; a warning
 * when every topic exists, as nothing is created until one is deleted), an existing topic whose
 * min.insync.replicas is above its replication factor (a problem: every write would be refused), and
 * one whose replication makes acks=all meaningless or has fewer replicas than the cluster allows (a
 * warning, as the roles log it). First it connects as the roles will (TLS, SASL): a wrong CA, host
 * name, client certificate or password, or unreachable brokers, is a problem naming the broker and the
 * reason, found here instead of by the first role to start. A failure reading the topics once
 * connected (a missing Describe permission) is only a warning, as the roles treat it.
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
  } catch (error) {
    await admin.disconnect().catch(() => {});
    const message = redactSecrets(errorMessage(error));
    const hint = isWalpurgeError(error) && error.hint ? ` (${error.hint})` : '';
    return { problems: [problemAt(['kafka'], `${message}${hint}`)], warnings: [] };
  }
  try {
    const state = await readWalpurgeTopics(admin, kafka);
    const problems: ConfigProblem[] = [];
    const warnings: ConfigProblem[] = [];
    const replication = replicationFor(kafka, state.brokers);
    if ('setting' in replication) {
      const message = `${replication.message} (fix: ${replication.hint})`;
      if (state.missing.length > 0) problems.push(problemAt(['kafka', replication.setting], message));
      else
        warnings.push(
          problemAt(
            ['kafka', replication.setting],
            `${message}; every topic exists, so the roles start, but a topic deleted would not be created again`,
          ),
        );
    }
    for (const { verdict, which, ...topic } of state.existing) {
      const at = ['kafka', TOPIC_KEYS[which]];
      const detail = `Kafka topic ${topic.topic} (replication factor ${topic.replicationFactor}, min.insync.replicas ${topic.minInsyncReplicas}, ${topic.brokers} brokers)`;
      if (!verdict.safe)
        (verdict.kind === 'refused' ? problems : warnings).push(
          problemAt(
            at,
            `${detail}: ${unsafeHeadline(verdict.kind)}: ${verdict.reason} (fix: ${verdict.fix})`,
          ),
        );
      else if (verdict.fewerReplicas)
        warnings.push(
          problemAt(
            at,
            `${detail}: fewer replicas than the cluster allows: ${verdict.fewerReplicas.reason} (fix: ${verdict.fewerReplicas.fix})`,
          ),
        );
    }
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
