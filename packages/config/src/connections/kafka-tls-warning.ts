import type { KafkaConfig } from '../schema/kafka.js';

/**
 * The warning for Kafka TLS that encrypts without checking who answers, else undefined: what
 * `validate` and the listener and invalidator print at start, as for database.ssl's no-verify.
 */
export function kafkaSslWarning(kafka: KafkaConfig | undefined): string | undefined {
  if (typeof kafka?.ssl !== 'object' || kafka.ssl.rejectUnauthorized) return undefined;
  return "kafka.ssl.rejectUnauthorized: false: encrypted, but the brokers' certificates are not checked: anyone on the path can impersonate them; set kafka.ssl.ca instead";
}
