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
} from '../test/harness.js';
import { RecordingServer } from '../test/recording-server.js';

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
  dir = mkdtempSync(join(tmpdir(), 'invalidator-crash-'));
});
afterAll(async () => {
  await admin?.deleteTopics({ topics }).catch(() => undefined);
  await admin?.disconnect();
  redis?.disconnect();
  rmSync(dir, { recursive: true, force: true });
});

describe('invalidator crash safety', () => {
  it('kill -9 mid-batch, repeatedly, while events keep coming: after restarts every expected key and URL is purged', async () => {
    const names = uniqueNames('inv_crash');
    topics.push(names.topic, names.deadLetterTopic, names.cdnTopic);
    await admin.createTopics({ topics: [{ topic: names.topic, numPartitions: 3 }], waitForLeaders: true });
    const cdn = new RecordingServer();
    cdn.defaultReply = () => ({ status: 200, body: '' });
    // Slow CDN answers keep the invalidator inside a batch (Redis done, CDN pending, uncommitted)
    // most of the time, which is where a crash must not lose anything.
    cdn.delayMs = 15;
    const endpoint = await cdn.start();
    const configFile = join(dir, 'walpurge.yaml');
    // JSON is YAML: the file is what an operator would write.
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
        },
        redis: { url: services.redisUrl, keyPrefix: names.prefix },
        cdn: { http: { endpoint, concurrency: 4 } },
        http: { port: 0, host: '127.0.0.1' },
        invalidator: { maxBatchEvents: 40, sessionTimeoutMs: 6_000, retryInitialMs: 20, retryMaxMs: 200 },
        rules: [
          {
            table: 'items',
            on: ['insert', 'update', 'delete'],
            // The updates below carry no old row: only the entry of each new version is expected.
            oldValues: 'ignore-missing',
            redis: { keys: ['item:{id}:{v}'] },
            cdn: { urls: ['https://cdn.test/items/{id}/{v}'] },
          },
        ],
      }),
    );
    const producer = await connectProducer(kafka);
    const sent: Array<{ id: number; v: number }> = [];
    let producing = true;
    const produce = (async () => {
      for (let v = 0; producing; v += 1) {
        const batch = Array.from({ length: 30 }, (_, id) => ({ id, v }));
        // The cache entry exists before its change is published, as in real life.
        await redis.mset(...batch.flatMap(({ id }) => [`${names.prefix}item:${id}:${v}`, 'stale']));
        await producer.sendEvents(
          names.topic,
          batch.map(({ id }) => changeEvent('u', 'items', { key: { id }, before: null, after: { id, v } })),
        );
        sent.push(...batch);
        await new Promise((done) => setTimeout(done, 100));
      }
    })();

    let child: ServiceProcess | undefined;
    const crashes = 3;
    try {
      for (let crash = 0; crash < crashes; crash += 1) {
        child = spawnServiceMain('services/invalidator/src/main.ts', configFile);
        const current = child;
        const before = cdn.requests.length;
        await waitFor(
          'the invalidator to be inside a batch (a CDN purge in flight) after purging something',
          async () => {
            if (current.exitCode !== null) throw new Error(`exited ${current.exitCode}`);
            return cdn.requests.length > before + 40 && cdn.inFlight > 0;
          },
          { timeoutMs: 40_000, intervalMs: 1 },
        ).catch((error: unknown) => {
          throw new Error(`${String(error)}\ninvalidator output:\n${current.output.join('')}`);
        });
        await signalAndWait(current, 'SIGKILL');
      }
      child = spawnServiceMain('services/invalidator/src/main.ts', configFile);
      producing = false;
      await produce;
      await waitForAllCommitted(admin, names.group, names.topic, 45_000).catch((error: unknown) => {
        throw new Error(`${String(error)}\ninvalidator output:\n${child?.output.join('')}`);
      });

      const keys = sent.map(({ id, v }) => `${names.prefix}item:${id}:${v}`);
      const remaining: string[] = [];
      for (let i = 0; i < keys.length; i += 500) {
        const slice = keys.slice(i, i + 500);
        const exists = await redis.mget(...slice);
        slice.forEach((key, j) => {
          if (exists[j] !== null) remaining.push(key);
        });
      }
      expect(remaining).toEqual([]);
      // CDN purges trail the Redis purges (their lane reads the CDN topic): wait for them.
      const purgedUrls = new Map<string, number>();
      const missingUrls = (): string[] => {
        purgedUrls.clear();
        for (const request of cdn.succeeded)
          purgedUrls.set(request.path, (purgedUrls.get(request.path) ?? 0) + 1);
        return sent.map(({ id, v }) => `/items/${id}/${v}`).filter((path) => !purgedUrls.has(path));
      };
      await expect.poll(missingUrls, { timeout: 45_000, interval: 200 }).toEqual([]);
      // Each crash left a batch uncommitted with a purge in flight: it was replayed, not skipped.
      const replayed = [...purgedUrls.values()].filter((count) => count > 1).length;
      expect(replayed).toBeGreaterThanOrEqual(crashes);
      expect(sent.length).toBeGreaterThan(300);
      expect((await committedOffsets(admin, names.group, names.topic)).reduce((a, b) => a + b, 0)).toBe(
        sent.length,
      );

      // A graceful stop (SIGTERM) exits cleanly.
      expect(await signalAndWait(child, 'SIGTERM')).toBe(0);
    } finally {
      producing = false;
      await produce.catch(() => undefined);
      if (child) await signalAndWait(child, 'SIGKILL');
      await producer.producer.disconnect();
      await cdn.stop();
      await deleteKeys(redis, names.prefix);
    }
  });
});
