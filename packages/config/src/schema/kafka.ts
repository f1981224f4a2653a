import { z } from 'zod';
import { positiveInt } from './common.js';
import { CaFile, CertificateFile, PrivateKeyFile } from './tls.js';

export const KafkaTlsFiles = z.strictObject({
  ca: CaFile.optional().describe(
    "PEM file of the CA certificate(s) that signed the brokers' certificates; replaces the system CAs. Read once at start.",
  ),
  cert: CertificateFile.optional().describe(
    'PEM file of the client certificate, for brokers that require mTLS (ssl.client.auth=required).',
  ),
  key: PrivateKeyFile.optional().describe('PEM file of the private key of `cert`.'),
  passphrase: z
    .string()
    .optional()
    .describe('Passphrase of an encrypted `key`. Usually ${KAFKA_KEY_PASSPHRASE}; never logged.'),
  servername: z
    .string()
    .min(1)
    .optional()
    .describe(
      "Host name the brokers' certificates must carry (TLS SNI and verification), when it is not the host of `brokers`.",
    ),
  rejectUnauthorized: z
    .boolean()
    .default(true)
    .describe(
      "Verify the brokers' certificates. false accepts any certificate (an attacker in the path can read everything): for a test cluster only; validate and the start warn, and it is refused next to `ca`.",
    ),
});
export type KafkaTlsFiles = z.infer<typeof KafkaTlsFiles>;

export const KafkaTls = z.union([
  z.boolean(),
  KafkaTlsFiles.refine((tls) => (tls.cert === undefined) === (tls.key === undefined), {
    message: 'cert and key go together: give both for mTLS, or neither',
  }).refine((tls) => tls.rejectUnauthorized || tls.ca === undefined, {
    // As database.ssl refuses no-verify next to a ca: one of the two is not what was meant.
    message: 'rejectUnauthorized: false checks no certificate: remove ca, or remove rejectUnauthorized',
    path: ['rejectUnauthorized'],
  }),
]);

/** "password is required for mechanism plain", not zod's "expected string, received undefined". */
const requiredString = (field: string, mechanism: string) => {
  const required = `${field} is required for mechanism ${mechanism}`;
  return z
    .string({ error: (issue) => (issue.input === undefined ? required : `${field} must be a string`) })
    .min(1, required);
};

const passwordSasl = <M extends 'plain' | 'scram-sha-256' | 'scram-sha-512'>(mechanism: M) =>
  z.strictObject({
    mechanism: z.literal(mechanism),
    username: requiredString('username', mechanism).describe('SASL user name.'),
    password: requiredString('password', mechanism).describe(
      'SASL password. Usually ${KAFKA_PASSWORD}; never logged.',
    ),
  });

export const KafkaSasl = z.discriminatedUnion('mechanism', [
  passwordSasl('plain'),
  passwordSasl('scram-sha-256'),
  passwordSasl('scram-sha-512'),
  z.strictObject({
    mechanism: z.literal('oauthbearer'),
    tokenProvider: z
      .string()
      .min(1)
      .describe(
        'ES module (path relative to the config file) whose default export is an async function returning { value: "<token>" }: called at every (re)authentication, so it fetches or refreshes the token (AWS MSK IAM, OIDC client credentials). Tokens are never logged.',
      ),
  }),
]);
export type KafkaSasl = z.infer<typeof KafkaSasl>;

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
  producerThread: z
    .boolean()
    .default(false)
    .describe(
      "Run the listener's producer (record batching, CRCs, partitioning, the socket) in its own worker thread, so that it can use a second core beside the decoding of the replication stream. Off by default: on a 2-core machine shared with PostgreSQL and Kafka it gained no throughput and cost about 150 MiB and a higher p99; try it where the listener has a core to spare.",
    ),
  producerClient: z
    .enum(['kafkajs', 'platformatic'])
    .default('kafkajs')
    .describe(
      "The Kafka client of the listener's producer (the other roles always use kafkajs). platformatic: @platformatic/kafka, which spends less CPU per produced record (measured: about a third less CPU per change on bulk inserts, a sixth on single-row transactions), with the same guarantees (idempotent, acks from all in-sync replicas, one request in flight, the same key -> partition mapping). It supports TLS and SASL plain/scram-sha-256/scram-sha-512; validate and the start refuse it with SASL oauthbearer or kafka.producerThread: true.",
    ),
  ssl: KafkaTls.default(false).describe(
    'TLS to the brokers: false (plaintext), true (TLS, verified against the system CAs), or an object with PEM files (paths relative to the config file).',
  ),
  sasl: KafkaSasl.optional().describe(
    'SASL authentication: plain, scram-sha-256, scram-sha-512 (username, password) or oauthbearer (tokenProvider). Use with ssl, or credentials cross the network in clear.',
  ),
});
export type KafkaConfig = z.infer<typeof KafkaConfig>;
