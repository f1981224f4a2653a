import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.js';
import { waitForKafka, waitForPostgres, waitForRedis } from './readiness.js';
import type { StartedService } from './types.js';

// Same images and server settings as the local processes, so a test cannot tell them apart.
const POSTGRES_IMAGE = 'postgres:16';
const postgresImage = (major: number | undefined): string =>
  major === undefined ? POSTGRES_IMAGE : `postgres:${major}`;
const REDIS_IMAGE = 'redis:7';
const KAFKA_IMAGE = 'apache/kafka:3.9.1';
const READY_TIMEOUT_MS = 120_000;

/**
 * Whether to use Docker. The cheap file/env checks come first because importing testcontainers and
 * probing for a runtime costs seconds, which machines without Docker (CI here) should not pay.
 */
export async function dockerIsReachable(): Promise<boolean> {
  const hints = [
    process.env['DOCKER_HOST'],
    process.env['TESTCONTAINERS_HOST_OVERRIDE'],
    existsSync('/var/run/docker.sock') ? 'socket' : undefined,
    existsSync(join(homedir(), '.docker', 'run', 'docker.sock')) ? 'socket' : undefined,
    existsSync(join(homedir(), '.testcontainers.properties')) ? 'properties' : undefined,
  ];
  if (!hints.some(Boolean)) return false;
  try {
    const { getContainerRuntimeClient } = await import('testcontainers');
    await withTimeout(getContainerRuntimeClient(), 15_000);
    return true;
  } catch {
    return false;
  }
}

/** `major`: the official image of that PostgreSQL major instead of the default one. */
export async function startContainerPostgres(major?: number): Promise<StartedService> {
  const { GenericContainer, Wait } = await import('testcontainers');
  const container = await new GenericContainer(postgresImage(major))
    .withEnvironment({ POSTGRES_PASSWORD: 'postgres', POSTGRES_HOST_AUTH_METHOD: 'trust' })
    .withCommand([
      'postgres',
      ...['-c', 'wal_level=logical', '-c', 'max_replication_slots=20', '-c', 'max_wal_senders=20'],
      ...['-c', 'max_connections=200', '-c', 'fsync=off', '-c', 'full_page_writes=off', '-c', 'TimeZone=UTC'],
    ])
    .withExposedPorts(5432)
    // The image's init starts a temporary server first; the second "ready" is the real one.
    .withWaitStrategy(Wait.forLogMessage(/database system is ready to accept connections/, 2))
    .withStartupTimeout(READY_TIMEOUT_MS)
    .start();
  const url = `postgres://postgres:postgres@${container.getHost()}:${container.getMappedPort(5432)}/postgres`;
  await readyOrStop(container, () => waitForPostgres(url, READY_TIMEOUT_MS));
  return {
    provider: 'testcontainers',
    urls: { databaseUrl: url },
    stop: async () => void (await container.stop()),
  };
}

export async function startContainerRedis(opts: { persistent?: boolean } = {}): Promise<StartedService> {
  const { GenericContainer, Wait } = await import('testcontainers');
  const durability = opts.persistent
    ? ['--appendonly', 'yes', '--appendfsync', 'everysec']
    : ['--appendonly', 'no'];
  const container = await new GenericContainer(REDIS_IMAGE)
    .withCommand(['redis-server', '--save', '', ...durability, '--maxmemory-policy', 'noeviction'])
    .withExposedPorts(6379)
    .withWaitStrategy(Wait.forLogMessage(/Ready to accept connections/))
    .withStartupTimeout(READY_TIMEOUT_MS)
    .start();
  const host = container.getHost();
  const port = container.getMappedPort(6379);
  await readyOrStop(container, () => waitForRedis(host, port, READY_TIMEOUT_MS));
  return {
    provider: 'testcontainers',
    urls: { redisUrl: `redis://${host}:${port}` },
    stop: async () => void (await container.stop()),
  };
}

/**
 * Kafka advertises an address that clients connect back to, so it must know its host port before
 * it starts; a random mapped port is only known afterwards. We therefore pick the port and have
 * the broker listen on the same number inside the container.
 */
export async function startContainerKafka(): Promise<StartedService> {
  const { GenericContainer, Wait, getContainerRuntimeClient } = await import('testcontainers');
  const host = (await getContainerRuntimeClient()).info.containerRuntime.host;
  const port = await freePort();
  const container = await new GenericContainer(KAFKA_IMAGE)
    .withEnvironment({
      KAFKA_NODE_ID: '1',
      KAFKA_PROCESS_ROLES: 'broker,controller',
      KAFKA_LISTENERS: `PLAINTEXT://:${port},CONTROLLER://:9093`,
      KAFKA_ADVERTISED_LISTENERS: `PLAINTEXT://${host}:${port}`,
      KAFKA_CONTROLLER_LISTENER_NAMES: 'CONTROLLER',
      KAFKA_LISTENER_SECURITY_PROTOCOL_MAP: 'CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
      KAFKA_CONTROLLER_QUORUM_VOTERS: '1@localhost:9093',
      KAFKA_NUM_PARTITIONS: '1',
      KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR: '1',
      KAFKA_OFFSETS_TOPIC_NUM_PARTITIONS: '1',
      KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR: '1',
      KAFKA_TRANSACTION_STATE_LOG_MIN_ISR: '1',
      KAFKA_TRANSACTION_STATE_LOG_NUM_PARTITIONS: '1',
      KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS: '0',
      KAFKA_AUTO_CREATE_TOPICS_ENABLE: 'true',
    })
    .withExposedPorts({ container: port, host: port })
    .withWaitStrategy(Wait.forLogMessage(/Kafka Server started/))
    .withStartupTimeout(READY_TIMEOUT_MS)
    .start();
  const brokers = [`${host}:${port}`];
  await readyOrStop(container, () => waitForKafka(brokers, READY_TIMEOUT_MS));
  return {
    provider: 'testcontainers',
    urls: { kafkaBrokers: brokers },
    stop: async () => void (await container.stop()),
  };
}

async function readyOrStop(
  container: { stop(): Promise<unknown> },
  ready: () => Promise<void>,
): Promise<void> {
  try {
    await ready();
  } catch (err) {
    await container.stop().catch(() => {});
    throw err;
  }
}

async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
