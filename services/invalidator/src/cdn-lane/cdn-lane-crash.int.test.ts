import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import type { Admin, Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { signalAndWait, spawnServiceMain, waitFor, type ServiceProcess } from '@walpurge/testing';
import {
  changeEvent,
  committedOffsets,
  connectProducer,
  deleteKeys,
  kafkaClient,
  uniqueNames,
  waitForAllCommitted,
} from '../../test/harness.js';
import { RecordingServer } from '../../test/recording-server.js';

const services = inject('services');

let kafka: Kafka;
let admin: Admin;
let redis: Redis;
let dir: string;
const topics: string[] = [];

beforeAll(async () => {
  kafka = kafkaClient(services);
  admin = kafka.admin();
  await admin.connect();
  redis = new Redis(services.redisUrl);
  dir = mkdtempSync(join(tmpdir(), 'cdn-lane-crash-'));
});
afterAll(async () => {
  await admin?.deleteTopics({ topics }).catch(() => undefined);
  await admin?.disconnect();
  redis?.disconnect();
  rmSync(dir, { recursive: true, force: true });
});

describe('the CDN lane, kafka transport, kill -9', () => {
  it('CDN purges throttled (429) when the process is killed: after the restart every one arrives', async () => {
    const names = uniqueNames('lane_crash');
    topics.push(names.topic, names.deadLetterTopic, names.cdnTopic);
    const cdn = new RecordingServer();
    cdn.defaultReply = () => ({ status: 200, body: '' });
    const endpoint = await cdn.start();
    const configFile = join(dir, 'walpurge.yaml');
    writeFileSync(
      configFile,
      JSON.stringify({
        transport: 'kafka',
        kafka: {
          brokers: services.kafkaBrokers,
          topic: names.topic,
          deadLetterTopic: names.deadLetterTopic,
          cdnTopic: names.cdnTopic,
          consumerGroup: names.group,
          partitions: 3,
        },
        redis: { url: services.redisUrl, keyPrefix: names.prefix },
        cdn: { http: { endpoint, concurrency: 4 }, coalesceWindowMs: 200 },
        http: { port: 0, host: '127.0.0.1' },
        invalidator: { sessionTimeoutMs: 6_000, retryInitialMs: 20, retryMaxMs: 200 },
        rules: [
          {
            table: 'items',
            on: ['insert', 'update', 'delete'],
            oldValues: 'ignore-missing',
            redis: { keys: ['item:{id}'] },
            cdn: { urls: ['https://cdn.test/items/{id}'] },
          },
        ],
      }),
    );
    const producer = await connectProducer(kafka);
    const ids = Array.from({ length: 30 }, (_, id) => id);
    let child: ServiceProcess | undefined;
    try {
      cdn.throttle(120_000, 1);
      child = spawnServiceMain('services/invalidator/src/main.ts', configFile);
      const first = child;
      await redis.mset(...ids.flatMap((id) => [`${names.prefix}item:${id}`, 'stale']));
      await producer.sendEvents(
        names.topic,
        ids.map((id) => changeEvent('u', 'items', { key: { id }, before: null, after: { id } })),
      );
      await waitForAllCommitted(admin, names.group, names.topic, 45_000).catch((error: unknown) => {
        throw new Error(`${String(error)}\ninvalidator output:\n${first.output.join('')}`);
      });
      expect(await redis.exists(...ids.map((id) => `${names.prefix}item:${id}`))).toBe(0);
      await waitFor('the lane to meet the 429', async () => cdn.requests.length > 0, { timeoutMs: 20_000 });
      expect(cdn.succeeded).toHaveLength(0);
      await signalAndWait(first, 'SIGKILL');
      // Nothing of the CDN topic was committed: the killed lane never got through.
      expect(await committedOffsets(admin, `${names.group}-cdn-http`, names.cdnTopic)).not.toContain(
        ids.length,
      );

      child = spawnServiceMain('services/invalidator/src/main.ts', configFile);
      const second = child;
      const before = cdn.requests.length;
      await waitFor('the restarted lane to retry', async () => cdn.requests.length > before, {
        timeoutMs: 45_000,
      }).catch((error: unknown) => {
        throw new Error(`${String(error)}\ninvalidator output:\n${second.output.join('')}`);
      });
      cdn.unthrottle();
      const purged = (): string[] => [...new Set(cdn.succeeded.map((request) => request.path))].sort();
      await expect
        .poll(purged, { timeout: 30_000, interval: 200 })
        .toEqual(ids.map((id) => `/items/${id}`).sort());
      expect(await signalAndWait(second, 'SIGTERM')).toBe(0);
    } finally {
      if (child) await signalAndWait(child, 'SIGKILL');
      await producer.producer.disconnect();
      await cdn.stop();
      await deleteKeys(redis, names.prefix);
    }
  });
});
