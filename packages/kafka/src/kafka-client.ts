import kafkajs, {
  type KafkaConfig as KafkaJsConfig,
  type LogEntry,
  type RetryOptions,
  type SASLOptions,
} from 'kafkajs';
import type { KafkaConfig } from '@walpurge/config';
import type { Logger } from '@walpurge/core';

const { Kafka, logLevel } = kafkajs;
export type KafkaClient = InstanceType<typeof Kafka>;

export interface KafkaClientOptions {
  /** Where kafkajs's own log lines go (through the redacting logger); none: kafkajs stays silent. */
  logger?: Logger;
  /** Appended to `kafka.clientId` (`<clientId>-<suffix>`), so brokers can tell the CLI's clients apart. */
  clientSuffix?: string;
  connectionTimeoutMs?: number;
  retry?: RetryOptions;
}

/** kafkajs log entries into our pino logger; its chatty INFO lines become debug. */
function kafkaLogCreator(logger: Logger) {
  const log = logger.child({ component: 'kafkajs' });
  return () =>
    ({ namespace, level, log: entry }: LogEntry): void => {
      const { message, ...extra } = entry;
      const fields = { kafka: namespace, ...extra };
      // The listener's sink limits retries on purpose (a failed send makes it replay from its durable
      // LSN: at-least-once, not exactly-once), so kafkajs's warning about it is noise for operators.
      if (typeof message === 'string' && message.startsWith('Limiting retries for the idempotent producer'))
        log.debug(fields, message);
      else if (level === logLevel.ERROR) log.error(fields, message);
      else if (level === logLevel.WARN) log.warn(fields, message);
      else if (level === logLevel.INFO) log.debug(fields, message);
      else log.trace(fields, message);
    };
}

/**
 * The one way walpurge connects to Kafka: every role and every CLI command builds its client here, so
 * brokers, TLS and SASL settings are read in one place.
 */
export function createKafka(config: KafkaConfig, options: KafkaClientOptions = {}): KafkaClient {
  const kafkaOptions: KafkaJsConfig = {
    clientId: options.clientSuffix ? `${config.clientId}-${options.clientSuffix}` : config.clientId,
    brokers: config.brokers,
    ssl: config.ssl,
    connectionTimeout: options.connectionTimeoutMs ?? 5_000,
    ...(options.retry ? { retry: options.retry } : {}),
    ...(options.logger
      ? { logLevel: logLevel.INFO, logCreator: kafkaLogCreator(options.logger) }
      : { logLevel: logLevel.NOTHING }),
  };
  if (config.sasl) {
    kafkaOptions.sasl = {
      mechanism: config.sasl.mechanism,
      username: config.sasl.username,
      password: config.sasl.password,
    } as SASLOptions;
  }
  return new Kafka(kafkaOptions);
}
