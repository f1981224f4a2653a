import kafkajs from 'kafkajs';
import { newClusterId, startLocalKafka, type LocalKafka, type LocalKafkaOptions } from './local-kafka.js';
import { freePort } from './ports.js';
import { describeError, waitFor } from './wait-for.js';

/** What a node's extra settings may depend on: its id and its ports. */
export interface LocalKafkaNode {
  id: number;
  /** Client (PLAINTEXT) listener port. */
  port: number;
  controllerPort: number;
}

export interface LocalKafkaClusterOptions extends Pick<
  LocalKafkaOptions,
  'log' | 'startTimeoutMs' | 'version' | 'cacheDir' | 'javaOpts'
> {
  /** Brokers in the cluster (at least 2). */
  brokers: number;
  /**
   * `first` (default): node 1 is the only KRaft controller (and a broker), the others only brokers;
   * enough for replication tests, but node 1 cannot restart without a metadata outage.
   * `all`: every node is controller and broker, the quorum is all of them, so any one node can
   * restart while the others carry on: a rolling restart with no outage. Internal topics and new
   * topics then default to 3 replicas (at most the broker count) with min.insync.replicas one less.
   */
  quorum?: 'first' | 'all';
  /** Client listener ports, one per node; default free ports (e.g. to put proxies in front first). */
  ports?: number[];
  /** Extra server.properties of one node, over the cluster's (e.g. its advertised listeners). */
  nodeSettings?: (node: LocalKafkaNode) => Record<string, string | number | boolean>;
}

export interface LocalKafkaCluster {
  /** Every broker's address, all on 127.0.0.1. */
  brokers: string[];
  nodes: LocalKafka[];
  stop(): Promise<void>;
}

/**
 * A KRaft cluster of several brokers on 127.0.0.1 free ports, for what one broker cannot show
 * (replication factors above 1, min.insync.replicas, a broker restarting under load).
 */
export async function startLocalKafkaCluster(opts: LocalKafkaClusterOptions): Promise<LocalKafkaCluster> {
  if (opts.brokers < 2)
    throw new Error('a local Kafka cluster needs at least 2 brokers (startLocalKafka for one)');
  if (opts.ports && opts.ports.length !== opts.brokers)
    throw new Error(`a local Kafka cluster of ${opts.brokers} brokers needs ${opts.brokers} ports`);
  // The nodes need each other's ports up front, which turns off startLocalKafka's own retry: a port
  // taken between freePort and the bind is retried here instead, with fresh ports for every node.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(opts);
    } catch (error) {
      if (!opts.ports && attempt < 3 && /already in use/i.test(describeError(error))) continue;
      throw error;
    }
  }
}

/** Replication settings a cluster of `count` brokers can honour (one broker may be down). */
function replicationSettings(count: number): Record<string, number> {
  const factor = Math.min(3, count);
  const minIsr = Math.max(1, factor - 1);
  return {
    'default.replication.factor': factor,
    'min.insync.replicas': minIsr,
    'offsets.topic.replication.factor': factor,
    'transaction.state.log.replication.factor': factor,
    'transaction.state.log.min.isr': minIsr,
  };
}

async function startOnce(opts: LocalKafkaClusterOptions): Promise<LocalKafkaCluster> {
  const { brokers: count, quorum = 'first', ports, nodeSettings, ...common } = opts;
  const clusterId = newClusterId();
  const nodesToStart: LocalKafkaNode[] = [];
  for (let index = 0; index < count; index++)
    nodesToStart.push({
      id: index + 1,
      port: ports?.[index] ?? (await freePort()),
      controllerPort: await freePort(),
    });
  const controllers = quorum === 'all' ? nodesToStart : nodesToStart.slice(0, 1);
  const voters = controllers.map((node) => `${node.id}@127.0.0.1:${node.controllerPort}`).join(',');
  const started: LocalKafka[] = [];
  const stop = async (): Promise<void> => {
    // Broker-only nodes first: the controller stopping first would leave them retrying until their timeout.
    const brokerOnly = quorum === 'all' ? [] : started.slice(1);
    await Promise.all(brokerOnly.map((node) => node.stop()));
    await Promise.all(started.map((node) => node.stop()));
  };
  const startNode = (node: LocalKafkaNode): Promise<LocalKafka> => {
    const controller = controllers.includes(node);
    return startLocalKafka({
      ...common,
      clusterId,
      port: node.port,
      controllerPort: node.controllerPort,
      settings: {
        'node.id': node.id,
        'process.roles': controller ? 'broker,controller' : 'broker',
        'controller.quorum.voters': voters,
        listeners: controller
          ? `PLAINTEXT://127.0.0.1:${node.port},CONTROLLER://127.0.0.1:${node.controllerPort}`
          : `PLAINTEXT://127.0.0.1:${node.port}`,
        // The single-controller cluster keeps one broker's defaults (replication tests set their own).
        ...(quorum === 'all' ? replicationSettings(count) : {}),
        ...nodeSettings?.(node),
      },
    });
  };
  const track = async (node: LocalKafkaNode): Promise<LocalKafka> => {
    const kafka = await startNode(node);
    started.push(kafka);
    return kafka;
  };
  /** Every node settles before a failure is thrown, so stop() reaches each one that did start. */
  const startAll = async (some: LocalKafkaNode[]): Promise<LocalKafka[]> => {
    const results = await Promise.allSettled(some.map(track));
    const failed = results.find((result) => result.status === 'rejected');
    if (failed) throw failed.reason;
    return results.map((result) => (result as PromiseFulfilledResult<LocalKafka>).value);
  };
  try {
    let nodes: LocalKafka[];
    if (quorum === 'all') {
      // A quorum of all nodes elects no leader until a majority runs: they must start together.
      nodes = await startAll(nodesToStart);
    } else {
      const [first, ...rest] = nodesToStart;
      if (!first) throw new Error('a local Kafka cluster needs at least 2 brokers');
      nodes = [await track(first), ...(await startAll(rest))];
    }
    // Results keep input order, so nodes[i] is node i + 1.
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
