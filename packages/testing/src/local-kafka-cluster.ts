import kafkajs from 'kafkajs';
import { newClusterId, startLocalKafka, type LocalKafka, type LocalKafkaOptions } from './local-kafka.js';
import { freePort } from './ports.js';
import { describeError, waitFor } from './wait-for.js';

export interface LocalKafkaClusterOptions extends Pick<
  LocalKafkaOptions,
  'log' | 'startTimeoutMs' | 'version' | 'cacheDir' | 'javaOpts'
> {
  /** Brokers in the cluster (at least 2): node 1 is also the KRaft controller, the others only brokers. */
  brokers: number;
}

export interface LocalKafkaCluster {
  /** Every broker's address, all on 127.0.0.1. */
  brokers: string[];
  nodes: LocalKafka[];
  stop(): Promise<void>;
}

/**
 * A KRaft cluster of several brokers on 127.0.0.1 free ports, for what one broker cannot show
 * (replication factors above 1, min.insync.replicas). One combined controller+broker node and
 * broker-only nodes that join its quorum: a single controller is enough for tests.
 */
export async function startLocalKafkaCluster(opts: LocalKafkaClusterOptions): Promise<LocalKafkaCluster> {
  if (opts.brokers < 2)
    throw new Error('a local Kafka cluster needs at least 2 brokers (startLocalKafka for one)');
  // The nodes need each other's ports up front, which turns off startLocalKafka's own retry: a port
  // taken between freePort and the bind is retried here instead, with fresh ports for every node.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(opts);
    } catch (error) {
      if (attempt < 3 && /already in use/i.test(describeError(error))) continue;
      throw error;
    }
  }
}

async function startOnce(opts: LocalKafkaClusterOptions): Promise<LocalKafkaCluster> {
  const { brokers: count, ...common } = opts;
  const clusterId = newClusterId();
  const controllerPort = await freePort();
  const nodes: LocalKafka[] = [];
  const stop = async (): Promise<void> => {
    // Brokers first: the controller stopping first would leave them retrying until their timeout.
    await Promise.all(nodes.slice(1).map((node) => node.stop()));
    await nodes[0]?.stop();
  };
  try {
    nodes.push(await startLocalKafka({ ...common, clusterId, controllerPort }));
    const joined = await Promise.all(
      Array.from({ length: count - 1 }, async (_, index) => {
        const port = await freePort();
        return startLocalKafka({
          ...common,
          clusterId,
          port,
          controllerPort,
          settings: {
            'process.roles': 'broker',
            'node.id': index + 2,
            listeners: `PLAINTEXT://127.0.0.1:${port}`,
          },
        });
      }),
    );
    nodes.push(...joined);
    const brokers = nodes.flatMap((node) => node.brokers);
    await waitForBrokers(brokers, count, opts.startTimeoutMs ?? 120_000);
    return { brokers, nodes, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Until every broker registered with the controller (the metadata then lists them all). */
async function waitForBrokers(brokers: string[], count: number, timeoutMs: number): Promise<void> {
  const admin = new kafkajs.Kafka({ brokers, logLevel: kafkajs.logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    await waitFor(
      `the local Kafka cluster to list ${count} brokers`,
      async () => (await admin.describeCluster()).brokers.length === count,
      { timeoutMs },
    );
  } finally {
    await admin.disconnect().catch(() => {});
  }
}
