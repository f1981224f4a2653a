import { z } from 'zod';
import { positiveInt } from './common.js';

export const KafkaConfig = z.strictObject({
  brokers: z.array(z.string().min(1)).min(1).describe('Bootstrap brokers, host:port.'),
  clientId: z.string().default('walpurge').describe('Kafka client id.'),
  topic: z
    .string()
    .min(1)
    .default('walpurge.changes')
    .describe('Topic the listener writes change events to (and the invalidator reads).'),
  partitions: positiveInt.default(6).describe('Partitions when walpurge creates the topic.'),
  replicationFactor: positiveInt
    .optional()
    .describe(
      'Replication factor of the topics walpurge creates. Unset: min(3, brokers in the cluster). Above the broker count, walpurge refuses to start when it has a topic to create.',
    ),
  minInsyncReplicas: positiveInt
    .optional()
    .describe(
      'min.insync.replicas of the topics walpurge creates. Unset: 1 at replication factor 1, 2 at replication factor 2, else the replication factor minus 1 (one broker may be down without blocking writes, and acks=all still means two copies). At most the replication factor.',
    ),
  deadLetterTopic: z
    .string()
    .min(1)
    .default('walpurge.dlq')
    .describe('Where undecodable or poison events go, with error headers.'),
  cdnTopic: z
    .string()
    .min(1)
    .default('walpurge.cdn')
    .describe(
      "The CDN queue: events whose Redis purges are done and whose CDN purges are pending, one consumer group per CDN provider (<consumerGroup>-cdn-<provider>). Created with one partition: a single consumer per provider paces the provider account's API rate limit.",
    ),
  consumerGroup: z
    .string()
    .min(1)
    .default('walpurge-invalidator')
    .describe('Consumer group of the invalidators.'),
  // Kafka's default limit on one record batch (broker message.max.bytes, topic max.message.bytes)
  // is about 1 MiB: the default stays a little below it for the batch framing.
  maxMessageBytes: positiveInt
    .min(1024, 'must be at least 1024: every message carries its key, headers and framing')
    .default(1_000_000)
    .describe(
      'Largest message walpurge produces: bigger change events drop their largest columns, bigger dead letters are cut to a stub. Topics walpurge creates accept it.',
    ),
  ssl: z.boolean().default(false).describe('Use TLS to the brokers.'),
  sasl: z
    .strictObject({
      mechanism: z.enum(['plain', 'scram-sha-256', 'scram-sha-512']),
      username: z.string(),
      password: z.string(),
    })
    .optional()
    .describe('SASL authentication.'),
});
export type KafkaConfig = z.infer<typeof KafkaConfig>;
