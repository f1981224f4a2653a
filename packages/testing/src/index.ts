export type { Provider, ServiceName, ServiceUrls } from './types.js';
export { startTestEnvironment, type StartOptions, type TestEnvironment } from './environment.js';
export {
  startLocalPostgres,
  findPostgresBinDir,
  type LocalPostgres,
  type LocalPostgresOptions,
} from './local-postgres.js';
export { startLocalPrimaryWithStandby, type LocalPrimaryWithStandby } from './local-standby.js';
export { startLocalRedis, type LocalRedis, type LocalRedisOptions } from './local-redis.js';
export { startLocalRedisCluster, type LocalRedisCluster } from './local-redis-cluster.js';
export { startLocalKafka, type LocalKafka, type LocalKafkaOptions } from './local-kafka.js';
export {
  startLocalKafkaCluster,
  type LocalKafkaCluster,
  type LocalKafkaClusterOptions,
} from './local-kafka-cluster.js';
export { ensureKafkaJars, KAFKA_VERSION, type KafkaJarsOptions } from './kafka-jars.js';
export { ensureHelmJars, HELM_JAVA_VERSION, type HelmJarsOptions } from './helm-jars.js';
export { FETCH_TIMEOUT_MS, walpurgeCacheDir } from './maven-cache.js';
export { ensurePromtool, type PromtoolOptions } from './promtool.js';
export {
  ensurePostgresBinaries,
  POSTGRES_BINARY_VERSIONS,
  type PostgresBinariesOptions,
  type PostgresVersion,
} from './postgres-binaries.js';
export {
  PG_VERSION_ENV_VAR,
  SYSTEM_POSTGRES_MAJOR,
  TEST_POSTGRES_MAJORS,
  requestedPostgresMajor,
  testPostgresVersion,
} from './postgres-version-choice.js';
export { SERVICE_ENV_VARS, servicesFromEnv, servicesToEnv } from './from-env.js';
export { serverMajor, withPgClient } from './postgres-client.js';
export { uniqueName, createIsolatedDatabase, withDatabase, type IsolatedDatabase } from './isolation.js';
export { waitFor, WaitForAbortError, type WaitForOptions } from './wait-for.js';
export { freePort } from './ports.js';
export { makeTempDir, type TempDir } from './temp-dirs.js';
export {
  makeTestCertificates,
  type TestCertificates,
  type TestCertificatesOptions,
} from './test-certificates.js';
export { isAlive, spawnManaged, type ManagedProcess, type SpawnOptions } from './processes.js';
export type { LogFn } from './log.js';
export { endPool } from './end-pool.js';
export { deleteRedisKeys } from './redis-keys.js';
export { startFreezableProxy, type FreezableProxy } from './freezable-proxy.js';
export { killNow, signalAndWait, spawnServiceMain, type ServiceProcess } from './service-process.js';
export { makeKafkaCertificates, type KafkaCertificates } from './kafka-certificates.js';
export type { KafkaSecurityOptions, SecuredListeners } from './local-kafka-security.js';
export { installInMemoryTracing, type InMemoryTracing } from './in-memory-tracing.js';
export { readTopicRecords } from './read-topic.js';
