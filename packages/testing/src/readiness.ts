import { connect } from 'node:net';
import kafkajs from 'kafkajs';
import { withPgClient } from './postgres-client.js';
import { WaitForAbortError, waitFor } from './wait-for.js';

const { Kafka, logLevel } = kafkajs;

/**
 * Readiness means "a client can do real work", checked by doing it, never by sleeping or by
 * scraping logs. `exitStatus` lets a wait give up the moment the server process dies.
 */
export type ExitStatus = () => string | undefined;

export async function waitForPostgres(
  url: string,
  timeoutMs: number,
  exitStatus?: ExitStatus,
): Promise<void> {
  await waitFor(
    `PostgreSQL at ${redactUrl(url)} to answer SELECT 1`,
    async () => {
      abortIfExited('postgres', exitStatus);
      await withPgClient(url, (client) => client.query('SELECT 1'));
      return true;
    },
    { timeoutMs, intervalMs: 100 },
  );
}

export async function waitForRedis(
  host: string,
  port: number,
  timeoutMs: number,
  exitStatus?: ExitStatus,
): Promise<void> {
  await waitFor(
    `Redis at ${host}:${port} to answer PING`,
    async () => {
      abortIfExited('redis-server', exitStatus);
      // "-LOADING" while an append-only file is replayed: not ready yet.
      return (await ping(host, port)) === '+PONG';
    },
    { timeoutMs, intervalMs: 50 },
  );
}

/**
 * An admin connects and the cluster metadata lists a broker, which in KRaft happens only once the
 * broker is registered and unfenced, i.e. able to host the topics tests create next; and consumer
 * groups have a coordinator.
 */
export async function waitForKafka(
  brokers: string[],
  timeoutMs: number,
  exitStatus?: ExitStatus,
): Promise<void> {
  const kafka = new Kafka({
    clientId: 'walpurge-testing-readiness',
    brokers,
    logLevel: logLevel.NOTHING,
    connectionTimeout: 2_000,
    requestTimeout: 5_000,
    retry: { retries: 0 },
  });
  await waitFor(
    `Kafka at ${brokers.join(',')} to list its brokers and topics and coordinate groups`,
    async () => {
      abortIfExited('kafka', exitStatus);
      const admin = kafka.admin();
      try {
        await admin.connect();
        const cluster = await admin.describeCluster();
        if (cluster.brokers.length === 0) return false;
        await admin.listTopics();
        // Looking up a group coordinator makes the broker create __consumer_offsets now, rather than
        // during the first test's consumer join (which then logs "coordinator not available").
        await admin.describeGroups(['walpurge-testing-readiness']);
        return true;
      } finally {
        await admin.disconnect().catch(() => {});
      }
    },
    { timeoutMs, intervalMs: 250 },
  );
}

function abortIfExited(name: string, exitStatus: ExitStatus | undefined): void {
  const status = exitStatus?.();
  if (status !== undefined) throw new WaitForAbortError(`${name} ${status}`);
}

/**
 * One raw PING over a socket: no client library, so no reconnect loop or offline queue to tidy up
 * while the server is not there yet. Resolves with the first reply line.
 */
function ping(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    let reply = '';
    socket.setTimeout(1_000, () => socket.destroy(new Error('PING timed out')));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString('utf8');
      const end = reply.indexOf('\r\n');
      if (end >= 0) {
        socket.destroy();
        resolve(reply.slice(0, end));
      }
    });
    socket.once('error', reject);
    socket.once('close', () => reject(new Error('connection closed before a PING reply')));
  });
}

/** For log lines: URLs from the environment may carry passwords. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return url;
  }
}
