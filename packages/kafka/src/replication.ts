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
 * "Topic creation errors" around "Replication-factor is invalid", naming neither number nor
 * setting), or a min.insync.replicas above the replication factor (every acks=all write would be
 * refused).
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

export type DurabilityVerdict =
  | {
      safe: true;
      /** Said once at info level (a single-broker cluster). */
      note?: string;
      /** Fewer replicas than the cluster could hold, yet acks=all still means two copies: a warning. */
      fewerReplicas?: { reason: string; fix: string };
    }
  | {
      safe: false;
      /**
       * meaningless: acks=all may mean the leader alone; refused: Kafka refuses every acks=all write
       * (min.insync.replicas above the replication factor), so the listener retries forever.
       */
      kind: 'meaningless' | 'refused';
      reason: string;
      fix: string;
    };

/** The headline of an unsafe verdict, as logs, validate and status print it. */
export function unsafeHeadline(kind: 'meaningless' | 'refused'): string {
  return kind === 'refused' ? 'every acks=all write is refused' : 'acks=all is meaningless';
}

function configsCommand(bootstrap: string, topic: string, minInsyncReplicas: number): string {
  return `kafka-configs.sh --bootstrap-server ${bootstrap} --alter --entity-type topics --entity-name ${topic} --add-config min.insync.replicas=${minInsyncReplicas}`;
}

function reassignCommand(bootstrap: string): string {
  return `kafka-reassign-partitions.sh --bootstrap-server ${bootstrap} --execute --reassignment-json-file <one more replica per partition>`;
}

/**
 * Whether acks=all means what walpurge relies on (a change acknowledged is held by more than one
 * broker) for an existing topic. Unsafe: a min.insync.replicas above the replication factor (its own
 * or the brokers' default: Kafka then refuses every acks=all write with NOT_ENOUGH_REPLICAS), one
 * replica on a cluster that could hold more, or min.insync.replicas 1 with several replicas (once the
 * ISR shrinks to the leader, acks=all waits for the leader alone). A single-broker cluster can do no
 * better than RF 1: safe, with a note. Fewer replicas than min(3, brokers) otherwise: safe, with a
 * warning (a topic created while a broker was down keeps its replication factor for good).
 */
export function assessDurability(topic: TopicReplication, bootstrap: string): DurabilityVerdict {
  const { replicationFactor, minInsyncReplicas, brokers } = topic;
  if (minInsyncReplicas > replicationFactor)
    return {
      safe: false,
      kind: 'refused',
      reason: `min.insync.replicas is ${minInsyncReplicas}, above its ${replicationFactor} replica${replicationFactor === 1 ? '' : 's'}: Kafka refuses every acks=all write (NOT_ENOUGH_REPLICAS) and the listener retries forever, holding its replication slot`,
      fix: configsCommand(bootstrap, topic.topic, matchingMinInsyncReplicas(replicationFactor)),
    };
  if (replicationFactor <= 1 && brokers <= 1)
    return {
      safe: true,
      note: 'single-broker Kafka cluster: every topic has one copy, nothing better is possible',
    };
  const wanted = Math.min(brokers, DEFAULT_MAX_REPLICATION_FACTOR);
  if (replicationFactor <= 1)
    return {
      safe: false,
      kind: 'meaningless',
      reason: `one replica on a cluster of ${brokers} brokers: a change acknowledged with acks=all is on one broker only`,
      fix: `raise its replication factor with ${reassignCommand(bootstrap)}, then ${configsCommand(bootstrap, topic.topic, matchingMinInsyncReplicas(wanted))}`,
    };
  if (minInsyncReplicas <= 1)
    return {
      safe: false,
      kind: 'meaningless',
      reason: `min.insync.replicas is ${minInsyncReplicas} with ${replicationFactor} replicas: once the in-sync replicas shrink to the leader, acks=all waits for the leader alone`,
      fix: configsCommand(bootstrap, topic.topic, matchingMinInsyncReplicas(replicationFactor)),
    };
  if (replicationFactor < wanted)
    return {
      safe: true,
      fewerReplicas: {
        reason: `${replicationFactor} replicas on a cluster of ${brokers} brokers (walpurge creates ${wanted}; a topic created while a broker was down keeps fewer for good)`,
        fix: `raise its replication factor to ${wanted} with ${reassignCommand(bootstrap)}`,
      },
    };
  return { safe: true };
}
