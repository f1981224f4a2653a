import type { ConfigProblem, WalpurgeConfig } from '@walpurge/config';
import { errorMessage, isWalpurgeError, redactSecrets } from '@walpurge/core';
import { kafkaClient } from '../status/kafka-status.js';
import { connectKafka } from './connection-errors.js';

type ProblemAt = (path: ReadonlyArray<PropertyKey>, message: string) => ConfigProblem;

/**
 * With transport: kafka, connects to the brokers as the roles will (TLS, SASL): a wrong CA, host
 * name, client certificate or password is found by `validate`, one line naming the broker and the
 * reason, instead of by the first role to start.
 */
export async function kafkaProblems(config: WalpurgeConfig, problemAt: ProblemAt): Promise<ConfigProblem[]> {
  if (config.transport !== 'kafka' || !config.kafka) return [];
  const admin = kafkaClient(config.kafka, 'validate').admin();
  try {
    await connectKafka(admin, config.kafka.brokers);
    return [];
  } catch (error) {
    const message = redactSecrets(errorMessage(error));
    const hint = isWalpurgeError(error) && error.hint ? ` (${error.hint})` : '';
    return [problemAt(['kafka'], `${message}${hint}`)];
  } finally {
    await admin.disconnect().catch(() => {});
  }
}
