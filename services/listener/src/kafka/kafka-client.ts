import kafkajs, { type KafkaConfig as KafkaJsConfig, type LogEntry, type SASLOptions } from 'kafkajs';
import type { KafkaConfig } from '@walpurge/config';
import type { Logger } from '@walpurge/core';

const { Kafka, logLevel } = kafkajs;

/** KafkaJS log entries into our pino logger; its chatty INFO lines become debug. */
function kafkaLogCreator(logger: Logger) {
  return () =>
    ({ namespace, level, log }: LogEntry): void => {
      const { message, ...extra } = log;
      const fields = { kafka: namespace, ...extra };
      // The sink limits retries on purpose (a failed send makes the listener replay from its durable
      // LSN: at-least-once, not exactly-once), so KafkaJS's warning about it is noise for operators.
      if (typeof message === 'string' && message.startsWith('Limiting retries for the idempotent producer'))
        logger.debug(fields, message);
      else if (level === logLevel.ERROR) logger.error(fields, message);
      else if (level === logLevel.WARN) logger.warn(fields, message);
      else if (level === logLevel.INFO) logger.debug(fields, message);
      else logger.trace(fields, message);
    };
}

export function createKafkaClient(config: KafkaConfig, logger: Logger): InstanceType<typeof Kafka> {
  const options: KafkaJsConfig = {
    clientId: config.clientId,
    brokers: config.brokers,
    ssl: config.ssl,
    connectionTimeout: 5000,
    logLevel: logLevel.INFO,
    logCreator: kafkaLogCreator(logger),
  };
  if (config.sasl) {
    options.sasl = {
      mechanism: config.sasl.mechanism,
      username: config.sasl.username,
      password: config.sasl.password,
    } as SASLOptions;
  }
  return new Kafka(options);
}
