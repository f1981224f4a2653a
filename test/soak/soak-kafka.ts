import kafkajs from 'kafkajs';
import {
  freePort,
  startFreezableProxy,
  startLocalKafkaCluster,
  waitFor,
  type FreezableProxy,
  type LocalKafkaCluster,
} from '@walpurge/testing';

/** Brokers of the soak's Kafka: every partition on all three, min.insync.replicas 2. */
export const SOAK_KAFKA_BROKERS = 3;

/**
 * The soak's Kafka: three KRaft nodes, each controller and broker, as a production cluster runs, so
 * restarting one broker is a rolling restart (its partitions' leadership moves, writes go on with
 * two in-sync replicas) and not a transport outage. Clients reach each broker through its own
 * freezable proxy (its advertised address); the brokers replicate among themselves on a listener of
 * their own, so a frozen client link does not also stall replication.
 */
export interface SoakKafka {
  /** The proxies' addresses: what every client is given. */
  readonly brokers: string[];
  readonly proxies: FreezableProxy[];
  /** Restarts the next broker in turn (controlled shutdown, same data), then waits for full ISR. */
  restartNext(): Promise<string>;
  stop(): Promise<void>;
}

export async function startSoakKafka(): Promise<SoakKafka> {
  const nodes = Array.from({ length: SOAK_KAFKA_BROKERS }, (_, index) => index + 1);
  const ports: number[] = [];
  const internalPorts: number[] = [];
  const proxies: FreezableProxy[] = [];
  try {
    for (const _ of nodes) {
      const port = await freePort();
      ports.push(port);
      internalPorts.push(await freePort());
      proxies.push(await startFreezableProxy({ host: '127.0.0.1', port }));
    }
  } catch (error) {
    await Promise.allSettled(proxies.map((proxy) => proxy.close()));
    throw error;
  }
  let cluster: LocalKafkaCluster;
  try {
    cluster = await startLocalKafkaCluster({
      brokers: SOAK_KAFKA_BROKERS,
      quorum: 'all',
      ports,
      nodeSettings: ({ id, port, controllerPort }) => {
        const internal = internalPorts[id - 1];
        const proxy = proxies[id - 1];
        if (internal === undefined || !proxy) throw new Error(`no ports for Kafka node ${id}`);
        return {
          listeners: `PLAINTEXT://127.0.0.1:${port},INTERNAL://127.0.0.1:${internal},CONTROLLER://127.0.0.1:${controllerPort}`,
          // Clients are told the proxy's address (metadata), or they would bypass it after bootstrap.
          'advertised.listeners': `PLAINTEXT://127.0.0.1:${proxy.port},INTERNAL://127.0.0.1:${internal}`,
          'inter.broker.listener.name': 'INTERNAL',
          'listener.security.protocol.map': 'CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,INTERNAL:PLAINTEXT',
        };
      },
    });
  } catch (error) {
    await Promise.allSettled(proxies.map((proxy) => proxy.close()));
    throw error;
  }
  const brokers = proxies.map((proxy) => `127.0.0.1:${proxy.port}`);
  let restarts = 0;
  return {
    brokers,
    proxies,
    async restartNext() {
      const index = restarts++ % SOAK_KAFKA_BROKERS;
      const node = cluster.nodes[index];
      if (!node) throw new Error(`no Kafka node ${index + 1}`);
      await node.restart();
      // The next fault must not find a replica still catching up: with two of three in sync, one
      // more broker down would stop every acks=all write. Operators wait the same way.
      const started = Date.now();
      await waitForFullIsr(brokers);
      return `broker ${index + 1} of ${SOAK_KAFKA_BROKERS}: controlled shutdown, start; all replicas in sync ${Date.now() - started} ms later`;
    },
    async stop() {
      await cluster.stop();
      await Promise.allSettled(proxies.map((proxy) => proxy.close()));
    },
  };
}

/** Until every partition of every topic has all its replicas in sync. */
async function waitForFullIsr(brokers: string[]): Promise<void> {
  const admin = new kafkajs.Kafka({ brokers, logLevel: kafkajs.logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    await waitFor(
      'every Kafka partition to have all its replicas in sync',
      async () => {
        const topics = await admin.listTopics();
        const metadata = await admin.fetchTopicMetadata({ topics });
        return metadata.topics.every((topic) =>
          topic.partitions.every((partition) => partition.isr.length === partition.replicas.length),
        );
      },
      { timeoutMs: 180_000, intervalMs: 250 },
    );
  } finally {
    await admin.disconnect().catch(() => {});
  }
}
