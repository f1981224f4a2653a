import { ErrorCode, WalpurgeError } from '@walpurge/core';

/**
 * How walpurge replicates the topics it creates, and when an existing topic's settings make the
 * producers' acks=all meaningless. Pure functions: the Kafka reads are in topic-durability.ts.
 */

/** Replication factor used when kafka.replicationFactor is unset, however large the cluster. */
export const DEFAULT_MAX_REPLICATION_FACTOR = 3;

export interface Replication {
  replicationFactor: number;
  minInsyncReplicas: number;
}

/**
 * min.insync.replicas "to match" a replication factor: RF − 1 from RF 3 up, so one broker may be down
 * without blocking writes while acks=all still means two copies; RF 2 gets 2 (1 would let acks=all
 * mean the leader alone, which is what the start-up check warns about: writes pause while a broker
 * is down instead, and the listener holds its slot and retries meanwhile); RF 1 can only get 1.
 */
export function matchingMinInsyncReplicas(replicationFactor: number): number {
  return Math.max(Math.min(2, replicationFactor), replicationFactor - 1);
}

export interface ReplicationSettings {
  /** kafka.replicationFactor; unset: min(3, brokers). */
  replicationFactor?: number | undefined;
  /** kafka.minInsyncReplicas; unset: matchingMinInsyncReplicas. */
  minInsyncReplicas?: number | undefined;
  /** kafka.brokers, named in the refusal. */
  brokers?: readonly string[];
}

export interface ReplicationProblem {
  /** The kafka.* setting at fault. */
  setting: 'replicationFactor' | 'minInsyncReplicas';
  message: string;
  hint: string;
}

/**
 * The replication of the topics to create on a cluster of `brokers` live brokers, or why there is
 * none: an explicit replication factor above the broker count (kafkajs reports Kafka's refusal as
 * "Topic creation errors" around "Replication-factor is invalid", naming neither number nor setting), or a min.insync.replicas above the replication factor (every acks=all write
 * would be refused).
 */
export function replicationFor(
  settings: ReplicationSettings,
  brokers: number,
): Replication | ReplicationProblem {
  const explicit = settings.replicationFactor;
  const cluster = settings.brokers?.length
    ? `the Kafka cluster at ${settings.brokers.join(', ')}`
    : 'the Kafka cluster';
  if (explicit !== undefined && explicit > brokers)
    return {
      setting: 'replicationFactor',
      message: `kafka.replicationFactor is ${explicit} but ${cluster} has ${brokers} live broker${brokers === 1 ? '' : 's'}: walpurge cannot create its topics`,
      hint: `set kafka.replicationFactor to ${brokers} or less, or leave it unset (min(${DEFAULT_MAX_REPLICATION_FACTOR}, brokers)); or start the missing brokers`,
    };
  const replicationFactor = explicit ?? Math.max(1, Math.min(DEFAULT_MAX_REPLICATION_FACTOR, brokers));
  const minInsyncReplicas = settings.minInsyncReplicas ?? matchingMinInsyncReplicas(replicationFactor);
  if (minInsyncReplicas > replicationFactor)
    return {
      setting: 'minInsyncReplicas',
      message: `kafka.minInsyncReplicas is ${minInsyncReplicas}, above the replication factor ${replicationFactor}${explicit === undefined ? ` (min(${DEFAULT_MAX_REPLICATION_FACTOR}, ${brokers} brokers))` : ''}: Kafka would refuse every write`,
      hint: `set kafka.minInsyncReplicas to ${replicationFactor} or less, or leave it unset`,
    };
  return { replicationFactor, minInsyncReplicas };
}

/** replicationFor, refusing to start on a problem. */
export function resolveReplication(settings: ReplicationSettings, brokers: number): Replication {
  const resolved = replicationFor(settings, brokers);
  if ('setting' in resolved)
    throw new WalpurgeError(ErrorCode.ConfigInvalid, resolved.message, { hint: resolved.hint });
  return resolved;
}

export interface TopicReplication {
  topic: string;
  /** Replicas of its partitions (the fewest, when they differ). */
  replicationFactor: number;
  /** Effective min.insync.replicas: the topic's own, else the broker default. */
  minInsyncReplicas: number;
  /** Live brokers in the cluster. */
  brokers: number;
}

export type DurabilityVerdict = { safe: true; note?: string } | { safe: false; reason: string; fix: string };

/**
 * Whether acks=all means what walpurge relies on (a change acknowledged is held by more than one
 * broker) for an existing topic. Unsafe: one replica on a cluster that could hold more, or
 * min.insync.replicas 1 with several replicas (once the ISR shrinks to the leader, acks=all waits for
 * the leader alone). A single-broker cluster can do no better than RF 1: safe, with a note.
 */
export function assessDurability(topic: TopicReplication, bootstrap: string): DurabilityVerdict {
  const { replicationFactor, minInsyncReplicas, brokers } = topic;
  if (replicationFactor <= 1 && brokers <= 1)
    return {
      safe: true,
      note: 'single-broker Kafka cluster: every topic has one copy, nothing better is possible',
    };
  if (replicationFactor <= 1)
    return {
      safe: false,
      reason: `one replica on a cluster of ${brokers} brokers: a change acknowledged with acks=all is on one broker only`,
      fix: `raise its replication factor with kafka-reassign-partitions.sh --bootstrap-server ${bootstrap} --execute --reassignment-json-file <one more replica per partition>, then kafka-configs.sh --bootstrap-server ${bootstrap} --alter --entity-type topics --entity-name ${topic.topic} --add-config min.insync.replicas=${matchingMinInsyncReplicas(Math.min(brokers, DEFAULT_MAX_REPLICATION_FACTOR))}`,
    };
  if (minInsyncReplicas <= 1)
    return {
      safe: false,
      reason: `min.insync.replicas is ${minInsyncReplicas} with ${replicationFactor} replicas: once the in-sync replicas shrink to the leader, acks=all waits for the leader alone`,
      fix: `kafka-configs.sh --bootstrap-server ${bootstrap} --alter --entity-type topics --entity-name ${topic.topic} --add-config min.insync.replicas=${matchingMinInsyncReplicas(replicationFactor)}`,
    };
  return { safe: true };
}
