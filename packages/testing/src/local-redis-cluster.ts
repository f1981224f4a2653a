import { join } from 'node:path';
import { Redis } from 'ioredis';
import { findExecutable } from './executables.js';
import { defaultLog, prefixed, type LogFn } from './log.js';
import { freePort } from './ports.js';
import { indent, spawnManaged, type ManagedProcess } from './processes.js';
import { waitForRedis } from './readiness.js';
import { makeTempDir } from './temp-dirs.js';
import { WaitForAbortError, describeError, waitFor } from './wait-for.js';

const HASH_SLOTS = 16_384;
const HOST = '127.0.0.1';

export interface LocalRedisClusterOptions {
  /** Master nodes, each owning an equal share of the hash slots; no replicas. Default 3. */
  masters?: number;
  log?: LogFn;
  /** For all nodes to answer PING, and again for the cluster to report cluster_state:ok. */
  startTimeoutMs?: number;
}

export interface LocalRedisClusterNode {
  port: number;
  /** Cluster bus port (gossip between nodes), chosen freely rather than port + 10000. */
  busPort: number;
  url: string;
  logFile: string;
  /** First and last hash slot this master owns. */
  slots: readonly [number, number];
}

export interface LocalRedisCluster {
  /** One node's URL: cluster clients discover the others from it (`redis.cluster: true`). */
  url: string;
  nodes: readonly LocalRedisClusterNode[];
  stop(): Promise<void>;
}

/**
 * A throw-away Redis Cluster of local redis-server processes on 127.0.0.1: pure cache (no RDB, no
 * AOF), slots split evenly over the masters, formed with CLUSTER ADDSLOTS and CLUSTER MEET from a
 * client (no redis-cli needed). Resolves once every node reports cluster_state:ok. Needs Redis ≥ 7.0
 * (`--cluster-port`, MEET with a bus port), so bus ports never collide with ephemeral ports.
 */
export async function startLocalRedisCluster(
  opts: LocalRedisClusterOptions = {},
): Promise<LocalRedisCluster> {
  const masters = opts.masters ?? 3;
  if (!Number.isInteger(masters) || masters < 1 || masters > 64) {
    throw new Error(`masters must be an integer from 1 to 64, got ${masters}`);
  }
  const binary = findExecutable('redis-server', ['/usr/bin', '/usr/local/bin', '/opt/homebrew/bin']);
  if (!binary) throw new Error('redis-server not found on PATH; install it (apt-get install redis-server)');
  const log = prefixed(opts.log ?? defaultLog);
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(binary, masters, opts.startTimeoutMs ?? 30_000);
    } catch (err) {
      // Another process took one of our free ports between the check and redis-server's bind.
      if (attempt < 3 && /already in use|failed listening/i.test(describeError(err))) {
        log(`redis cluster: a port was taken, retrying (${attempt})`);
        continue;
      }
      throw err;
    }
  }
}

async function startOnce(binary: string, masters: number, timeoutMs: number): Promise<LocalRedisCluster> {
  const dir = makeTempDir('redis-cluster');
  const procs: ManagedProcess[] = [];
  const nodes: LocalRedisClusterNode[] = [];
  const stopAll = async (): Promise<void> => {
    await Promise.all(procs.map((proc) => proc.stop()));
    await dir.remove();
  };
  try {
    for (let i = 0; i < masters; i++) {
      const [port, busPort] = [await freePort(), await freePort()];
      const logFile = join(dir.path, `redis-${port}.log`);
      // One option and its value per line.
      // prettier-ignore
      const args = [
        '--port', String(port),
        '--bind', HOST,
        '--dir', dir.path,
        '--save', '',
        '--appendonly', 'no',
        '--cluster-enabled', 'yes',
        '--cluster-config-file', join(dir.path, `nodes-${port}.conf`),
        '--cluster-port', String(busPort),
        // Without it a node learns its own address from peers' gossip, and until then lists itself
        // with an empty IP in CLUSTER SLOTS.
        '--cluster-announce-ip', HOST,
        '--daemonize', 'no',
        '--logfile', '',
      ];
      procs.push(
        spawnManaged(`redis-server:${port}`, binary, args, { cwd: dir.path, logFile, stopTimeoutMs: 5_000 }),
      );
      const first = Math.floor((i * HASH_SLOTS) / masters);
      const last = Math.floor(((i + 1) * HASH_SLOTS) / masters) - 1;
      nodes.push({ port, busPort, url: `redis://${HOST}:${port}`, logFile, slots: [first, last] });
    }
    const exitStatus = (): string | undefined => procs.find((proc) => proc.exitStatus)?.exitStatus;
    await Promise.all(
      nodes.map((node, i) => waitForRedis(HOST, node.port, timeoutMs, () => procs[i]?.exitStatus)),
    );
    await formCluster(nodes, timeoutMs, exitStatus);
  } catch (err) {
    const tails = procs.map((proc) => `${proc.name}:\n${indent(proc.logTail(20))}`).join('\n');
    await stopAll();
    throw new Error(`local Redis Cluster did not start: ${describeError(err)}\n${tails}`, { cause: err });
  }
  let stopped: Promise<void> | undefined;
  return {
    url: nodes[0]?.url ?? '',
    nodes,
    stop: () => (stopped ??= stopAll()),
  };
}

async function formCluster(
  nodes: readonly LocalRedisClusterNode[],
  timeoutMs: number,
  exitStatus: () => string | undefined,
): Promise<void> {
  // No reconnects, no offline queue: an admin command either reaches its node now or fails.
  const clients = nodes.map(
    (node) =>
      new Redis({
        host: HOST,
        port: node.port,
        lazyConnect: true,
        retryStrategy: () => null,
        enableOfflineQueue: false,
      }),
  );
  try {
    await Promise.all(clients.map((client) => client.connect()));
    await Promise.all(
      clients.map(async (client, i) => {
        const node = nodes[i] as LocalRedisClusterNode;
        const [first, last] = node.slots;
        await client.call(
          'CLUSTER',
          'ADDSLOTS',
          ...Array.from({ length: last - first + 1 }, (_, k) => first + k),
        );
        // Distinct epochs up front, as redis-cli does: otherwise the nodes first have to resolve
        // their colliding epoch 0 before the slot ownership settles.
        await client.call('CLUSTER', 'SET-CONFIG-EPOCH', i + 1);
      }),
    );
    // One node introduces all others; gossip then tells every node about every other.
    const introducer = clients[0] as Redis;
    for (const node of nodes.slice(1))
      await introducer.call('CLUSTER', 'MEET', HOST, node.port, node.busPort);
    await waitFor(
      `Redis Cluster of ${nodes.length} masters to report cluster_state:ok on every node`,
      async () => {
        const status = exitStatus();
        if (status !== undefined) throw new WaitForAbortError(`a cluster node ${status}`);
        const infos = await Promise.all(clients.map((client) => client.call('CLUSTER', 'INFO')));
        return infos.every((info) => isFormed(String(info), nodes.length));
      },
      { timeoutMs, intervalMs: 50 },
    );
  } finally {
    for (const client of clients) client.disconnect();
  }
}

/** This node sees every slot served and every other master as a peer. */
function isFormed(info: string, masters: number): boolean {
  const field = (name: string): string | undefined => new RegExp(`^${name}:(\\S+)`, 'm').exec(info)?.[1];
  return (
    field('cluster_state') === 'ok' &&
    field('cluster_slots_ok') === String(HASH_SLOTS) &&
    field('cluster_known_nodes') === String(masters) &&
    field('cluster_size') === String(masters)
  );
}
