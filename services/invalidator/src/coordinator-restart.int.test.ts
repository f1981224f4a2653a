/**
 * A rolling restart of the broker that coordinates the invalidators' consumer group, on a real
 * 3-node KRaft cluster: the group's coordinator moves to another broker, and the invalidator must
 * follow it and go on purging. kafkajs's consumer.commitOffsets retries against the coordinator it
 * cached, which answers "not the correct coordinator" for as long as the member lives: with
 * walpurge's unbounded retries that froze every partition's purges (42 s and counting, in the soak).
 */
import { Redis } from 'ioredis';
import kafkajs, { type Admin } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startLocalKafkaCluster, waitFor, type LocalKafkaCluster } from '@walpurge/testing';
import {
  changeEvent,
  connectProducer,
  deleteKeys,
  invalidatorConfig,
  startInvalidator,
  uniqueNames,
  waitForAllCommitted,
} from '../test/harness.js';

const services = inject('services');
let cluster: LocalKafkaCluster;
let admin: Admin;
let redis: Redis;

beforeAll(async () => {
  cluster = await startLocalKafkaCluster({ brokers: 3, quorum: 'all' });
  admin = new kafkajs.Kafka({ brokers: cluster.brokers, logLevel: kafkajs.logLevel.NOTHING }).admin();
  await admin.connect();
  redis = new Redis(services.redisUrl);
}, 180_000);
afterAll(async () => {
  await admin?.disconnect().catch(() => {});
  redis?.disconnect();
  await cluster?.stop();
}, 60_000);

/** The node leading the only __consumer_offsets partition: every group's coordinator here. */
async function coordinatorIndex(): Promise<number> {
  const { topics } = await admin.fetchTopicMetadata({ topics: ['__consumer_offsets'] });
  const leader = topics[0]?.partitions[0]?.leader;
  if (leader === undefined || leader < 1) throw new Error('__consumer_offsets has no leader');
  return leader - 1;
}

describe('invalidator and a moving group coordinator', () => {
  it('goes on purging after the broker coordinating its group restarts', { timeout: 240_000 }, async () => {
    const names = uniqueNames('inv_coordinator');
    const config = invalidatorConfig({ ...services, kafkaBrokers: cluster.brokers }, names, {
      partitions: 2,
      kafka: { brokers: cluster.brokers, replicationFactor: 3, minInsyncReplicas: 2 },
      rules: [{ table: 'items', redis: { keys: ['item:{id}'] } }],
    });
    const running = await startInvalidator(config);
    const producer = await connectProducer(
      new kafkajs.Kafka({ brokers: cluster.brokers, logLevel: kafkajs.logLevel.NOTHING }),
    );
    let id = 0;
    /** One update, its entry seeded first; resolves once sent. */
    const sendOne = async (): Promise<string> => {
      id += 1;
      const key = `${names.prefix}item:${id}`;
      await redis.set(key, 'cached');
      await producer.sendEvents(names.topic, [
        changeEvent('u', 'items', { key: { id }, before: null, after: { id } }),
      ]);
      return key;
    };
    const purged = (keys: string[], timeoutMs: number): Promise<unknown> =>
      waitFor(
        `${keys.length} entries purged`,
        async () => (await Promise.all(keys.map((key) => redis.exists(key)))).every((n) => n === 0),
        { timeoutMs },
      );
    try {
      // Commits land before the restart, so the member has a coordinator to lose.
      await purged([await sendOne(), await sendOne()], 20_000);
      // Events keep coming through the restart, so a batch is committing when the coordinator moves.
      const sent: string[] = [];
      let sending = true;
      const stream = (async () => {
        while (sending) {
          sent.push(await sendOne());
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      })();
      await cluster.nodes[await coordinatorIndex()]!.restart();
      sent.push(await sendOne());
      sending = false;
      await stream;
      // 30 s is far beyond a rejoin (about a session timeout, 6 s), and far below the stall, which
      // lasts until the member is evicted.
      await purged(sent, 30_000);
      await purged([await sendOne()], 30_000);
      expect(sent.length).toBeGreaterThan(10);
      // And the commits follow the purges again: a member whose commits go nowhere would replay
      // everything after a restart, and its lag metric would only grow.
      await waitForAllCommitted(admin, names.group, names.topic, 30_000);
    } finally {
      await producer.producer.disconnect();
      await running.stop();
      await deleteKeys(redis, names.prefix.slice(0, -1));
    }
  });
});
