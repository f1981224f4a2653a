import type { ServiceUrls } from './types.js';

/** The variables that point the test environment at already-running services. */
export const SERVICE_ENV_VARS = {
  databaseUrl: 'WALPURGE_TEST_DATABASE_URL',
  redisUrl: 'WALPURGE_TEST_REDIS_URL',
  kafkaBrokers: 'WALPURGE_TEST_KAFKA_BROKERS',
} as const;

/** Each service independently: setting only the database URL still starts Redis and Kafka. */
export function servicesFromEnv(env: NodeJS.ProcessEnv = process.env): Partial<ServiceUrls> {
  const urls: Partial<ServiceUrls> = {};
  const databaseUrl = env[SERVICE_ENV_VARS.databaseUrl]?.trim();
  if (databaseUrl) urls.databaseUrl = databaseUrl;
  const redisUrl = env[SERVICE_ENV_VARS.redisUrl]?.trim();
  if (redisUrl) urls.redisUrl = redisUrl;
  const brokers = (env[SERVICE_ENV_VARS.kafkaBrokers] ?? '')
    .split(',')
    .map((broker) => broker.trim())
    .filter(Boolean);
  if (brokers.length > 0) urls.kafkaBrokers = brokers;
  return urls;
}

/** The inverse, for handing services to child processes and later test workers. */
export function servicesToEnv(urls: Partial<ServiceUrls>): Record<string, string> {
  const env: Record<string, string> = {};
  if (urls.databaseUrl) env[SERVICE_ENV_VARS.databaseUrl] = urls.databaseUrl;
  if (urls.redisUrl) env[SERVICE_ENV_VARS.redisUrl] = urls.redisUrl;
  if (urls.kafkaBrokers) env[SERVICE_ENV_VARS.kafkaBrokers] = urls.kafkaBrokers.join(',');
  return env;
}
