import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import kafkajs, { type Consumer } from 'kafkajs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { KafkaConfig, WalpurgeConfig } from '@walpurge/config';
import { createLogger, createMetricsRegistry } from '@walpurge/core';
import { decodeChangeEventV1, messageKey, type ChangeEvent } from '@walpurge/protocol';
import {
  createIsolatedDatabase,
  freePort,
  uniqueName,
  waitFor,
  type IsolatedDatabase,
} from '@walpurge/testing';
import { createKafkaSink, toKafkaMessage } from './kafka/kafka-sink.js';
import { createListener } from './listener.js';

const services = inject('services');
/** The sink's tests run with each producer client (kafka.producerClient). */
const CLIENTS = ['kafkajs', 'platformatic'] as const;
const logger = createLogger({ level: process.env['LOG_LEVEL'] ?? 'silent', pretty: false });
const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

interface Received {
  key: string;
  partition: number;
  headers: Record<string, string>;
  event: ChangeEvent;
}

/** Reads a topic from the beginning into memory, in partition order. */
async function consumeAll(topic: string): Promise<{ received: Received[]; stop(): Promise<void> }> {
  const kafka = new kafkajs.Kafka({
    clientId: 'listener-test',
    brokers: services.kafkaBrokers,
    logLevel: kafkajs.logLevel.NOTHING,
  });
  const consumer: Consumer = kafka.consumer({ groupId: uniqueName('group') });
  const received: Received[] = [];
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message, partition }) => {
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(message.headers ?? {})) headers[name] = String(value);
      received.push({
        key: String(message.key),
        partition,
        headers,
        event: decodeChangeEventV1(message.value as Buffer),
      });
    },
  });
  return { received, stop: () => consumer.disconnect() };
}

describe.each(CLIENTS)('Kafka sink (%s)', (producerClient) => {
  it('creates the topic with the configured partitions and publishes keyed events with headers', async () => {
    const topic = uniqueName('sink');
    const registry = createMetricsRegistry({ defaultMetrics: false });
    const sink = createKafkaSink({
      config: KafkaConfig.parse({ brokers: services.kafkaBrokers, topic, partitions: 3, producerClient }),
      logger,
      registry,
    });
    const event = (id: number, op: ChangeEvent['op']): ChangeEvent => ({
      v: 1,
      op,
      source: {
        db: 'app',
        schema: 'public',
        table: 'users',
        lsn: '0/16B3748',
        xid: 7,
        commitTs: new Date().toISOString(),
        origin: null,
      },
      key: { id },
      before: op === 'c' ? null : { id },
      after: op === 'd' ? null : { id, email: `${id}@x` },
      unchanged: [],
    });
    try {
      await sink.connect();
      const admin = new kafkajs.Kafka({
        brokers: services.kafkaBrokers,
        logLevel: kafkajs.logLevel.NOTHING,
      }).admin();
      await admin.connect();
      const metadata = await admin.fetchTopicMetadata({ topics: [topic] });
      await admin.disconnect();
      expect(metadata.topics[0]?.partitions).toHaveLength(3);

      // Overlapping calls, as the listener makes them: all resolve, and per-key order holds.
      await Promise.all([
        sink.publish([event(1, 'c'), event(2, 'c')]),
        sink.publish([event(1, 'u')]),
        sink.publish([event(1, 'd')]),
      ]);
      const consumer = await consumeAll(topic);
      try {
        await waitFor('4 messages', async () => consumer.received.length >= 4, { timeoutMs: 60_000 });
      } finally {
        await consumer.stop();
      }
      const forOne = consumer.received.filter((m) => m.key === messageKey(event(1, 'c')));
      expect(forOne.map((m) => m.event.op)).toEqual(['c', 'u', 'd']);
      expect(new Set(forOne.map((m) => m.partition)).size).toBe(1);
      expect(forOne[0]?.key).toBe('public.users:{"id":1}');
      expect(forOne[1]?.headers).toEqual({ table: 'public.users', op: 'u', lsn: '0/16B3748' });
      expect(await registry.getSingleMetricAsString('walpurge_kafka_sink_messages_total')).toContain(
        'walpurge_kafka_sink_messages_total 4',
      );
      const valueBytes = [event(1, 'c'), event(2, 'c'), event(1, 'u'), event(1, 'd')]
        .map((e) => (toKafkaMessage(e).value as Buffer).length)
        .reduce((sum, length) => sum + length, 0);
      const bytes = Number(
        /walpurge_kafka_sink_bytes_total (\d+)/.exec(
          await registry.getSingleMetricAsString('walpurge_kafka_sink_bytes_total'),
        )?.[1],
      );
      expect(bytes).toBeGreaterThan(valueBytes); // plus keys, headers and record framing
      expect(bytes).toBeLessThan(valueBytes + 4 * 300);
      expect(await registry.getSingleMetricAsString('walpurge_kafka_sink_send_seconds')).toMatch(
        /walpurge_kafka_sink_send_seconds_count [1-9]/,
      );
    } finally {
      await sink.close();
    }
  });
});

describe.each(CLIENTS)('Kafka sink and Kafka size limits (%s)', (producerClient) => {
  it('splits big publish calls over several requests and slims events too big for one message', async () => {
    const topic = uniqueName('sizes');
    const registry = createMetricsRegistry({ defaultMetrics: false });
    // One partition: every message of a request lands in one record batch, which Kafka caps at 1 MiB.
    const sink = createKafkaSink({
      config: KafkaConfig.parse({ brokers: services.kafkaBrokers, topic, partitions: 1, producerClient }),
      logger,
      registry,
    });
    const event = (id: number, payload: string): ChangeEvent => ({
      v: 1,
      op: 'u',
      source: {
        db: 'app',
        schema: 'public',
        table: 'docs',
        lsn: '0/16B3748',
        xid: 7,
        commitTs: new Date().toISOString(),
        origin: null,
      },
      key: { id },
      before: { id, body: payload },
      after: { id, body: payload, n: 1 },
      unchanged: [],
    });
    try {
      await sink.connect();
      // ~3 MB in one call: sent as one request before, which Kafka refused for good.
      await sink.publish(Array.from({ length: 3000 }, (_, i) => event(i, 'x'.repeat(400))));
      await sink.publish([event(-1, 'y'.repeat(2_000_000))]);
      const consumer = await consumeAll(topic);
      try {
        await waitFor('3001 messages', async () => consumer.received.length >= 3001, { timeoutMs: 60_000 });
      } finally {
        await consumer.stop();
      }
      expect(consumer.received.slice(0, 3000).map((m) => m.event.key?.['id'])).toEqual(
        Array.from({ length: 3000 }, (_, i) => i),
      );
      const big = consumer.received[3000] as Received;
      expect(big.headers['walpurge-omitted']).toBe('body');
      expect(big.event.key).toEqual({ id: -1 });
      expect(big.event.after).toEqual({ id: -1, n: 1 });
      expect(await registry.getSingleMetricAsString('walpurge_kafka_sink_oversized_events_total')).toContain(
        'walpurge_kafka_sink_oversized_events_total 1',
      );
      const sends = await registry.getSingleMetricAsString('walpurge_kafka_sink_send_seconds');
      expect(Number(/walpurge_kafka_sink_send_seconds_count (\d+)/.exec(sends)?.[1])).toBeGreaterThanOrEqual(
        4,
      );
    } finally {
      await sink.close();
    }
  });
});

describe('listener → Kafka', () => {
  let db: IsolatedDatabase;
  let client: pg.Client;
  let workDir: string;

  beforeAll(async () => {
    db = await createIsolatedDatabase(services.databaseUrl, 'listener_kafka');
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
    await client.query('CREATE TABLE counters (id int PRIMARY KEY, version int NOT NULL)');
    workDir = mkdtempSync(join(tmpdir(), 'walpurge-listener-'));
  });

  afterAll(async () => {
    await client?.end();
    await db?.drop();
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  it.each(CLIENTS)(
    'publishes committed changes to Kafka through the default sink (%s)',
    async (producerClient) => {
      const topic = uniqueName('e2e');
      const slot = uniqueName('e2e');
      const config = WalpurgeConfig.parse({
        transport: 'kafka',
        database: { url: db.url, slot, publication: slot, tables: ['counters'], heartbeatIntervalMs: 0 },
        kafka: { brokers: services.kafkaBrokers, topic, partitions: 2, producerClient },
      });
      const listener = createListener({
        config,
        logger,
        registry: createMetricsRegistry({ defaultMetrics: false }),
        onFatal: () => {},
      });
      await listener.start(new AbortController().signal);
      // The listener creates the topic; subscribe once it did.
      await waitFor('streaming', async () => listener.isReady(), { timeoutMs: 30_000 });
      const consumer = await consumeAll(topic).catch(async (error: unknown) => {
        await listener.stop();
        throw error;
      });
      try {
        // A row of its own per client: both runs share the table.
        const id = producerClient === 'kafkajs' ? -1 : -2;
        await client.query('INSERT INTO counters VALUES ($1, 1)', [id]);
        await client.query('UPDATE counters SET version = 2 WHERE id = $1', [id]);
        await waitFor('2 messages', async () => consumer.received.length >= 2, { timeoutMs: 60_000 });
        expect(consumer.received.map((m) => [m.event.op, m.event.after?.['version']])).toEqual([
          ['c', 1],
          ['u', 2],
        ]);
        expect(consumer.received[0]?.headers['table']).toBe('public.counters');
      } finally {
        await consumer.stop();
        await listener.stop();
      }
    },
  );

  it.each(CLIENTS)(
    'loses nothing and keeps per-row order when the listener is killed -9 repeatedly (%s)',
    async (producerClient) => {
      const topic = uniqueName('crash');
      const slot = uniqueName('crash');
      const rows = 20;
      // Rows of its own per client: both runs share the table.
      const base = producerClient === 'kafkajs' ? 0 : 1000;
      await client.query('INSERT INTO counters SELECT g, 0 FROM generate_series($1::int, $2::int) g', [
        base + 1,
        base + rows,
      ]);
      const configFile = join(workDir, `${slot}.yaml`);
      writeFileSync(
        configFile,
        JSON.stringify({
          transport: 'kafka',
          database: {
            url: db.url,
            slot,
            publication: slot,
            tables: ['counters'],
            statusIntervalMs: 500,
            heartbeatIntervalMs: 0,
          },
          kafka: { brokers: services.kafkaBrokers, topic, partitions: 3, producerClient },
          log: { level: 'warn', pretty: false },
        }),
      );

      let child: ChildProcess | undefined;
      let port = 0;
      const spawnListener = async (): Promise<void> => {
        port = await freePort();
        child = spawn(
          process.execPath,
          [
            '--conditions=@walpurge/source',
            '--import',
            'tsx',
            'services/listener/src/main.ts',
            '--config',
            configFile,
          ],
          {
            cwd: repoRoot,
            env: { ...process.env, WALPURGE_HTTP_PORT: String(port), LOG_LEVEL: 'warn' },
            stdio: ['ignore', 'ignore', 'inherit'],
          },
        );
      };
      const ready = async (): Promise<boolean> => {
        const response = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined);
        return response?.status === 200;
      };
      const kill9 = async (): Promise<void> => {
        const running = child;
        if (!running || running.exitCode !== null) return;
        const exited = new Promise((resolve) => running.once('exit', resolve));
        running.kill('SIGKILL');
        await exited;
      };

      // The writer: small transactions of 1–3 increments, recording what was committed.
      const committed = new Map<number, number>();
      let writing = true;
      await spawnListener();
      await waitFor('listener ready', ready, { timeoutMs: 60_000, intervalMs: 100 });
      const consumer = await consumeAll(topic);
      const writer = (async () => {
        while (writing) {
          const ids = Array.from(
            { length: 1 + Math.floor(Math.random() * 3) },
            () => base + 1 + Math.floor(Math.random() * rows),
          );
          await client.query('BEGIN');
          const versions: Array<[number, number]> = [];
          for (const id of ids) {
            const result = await client.query<{ version: number }>(
              'UPDATE counters SET version = version + 1 WHERE id = $1 RETURNING version',
              [id],
            );
            versions.push([id, result.rows[0]?.version as number]);
          }
          await client.query('COMMIT');
          for (const [id, version] of versions) committed.set(id, Math.max(committed.get(id) ?? 0, version));
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      })();

      try {
        for (let round = 0; round < 4; round += 1) {
          if (round > 0) {
            await spawnListener();
            await waitFor('listener ready', ready, { timeoutMs: 60_000, intervalMs: 100 });
          }
          await new Promise((resolve) => setTimeout(resolve, 500 + Math.random() * 1500));
          await kill9();
        }
        writing = false;
        await writer;
        await spawnListener();
        await waitFor('listener ready', ready, { timeoutMs: 60_000, intervalMs: 100 });

        const total = [...committed.values()].reduce((sum, v) => sum + v, 0);
        expect(total).toBeGreaterThan(50);
        const seen = (): Map<number, number[]> => {
          const byRow = new Map<number, number[]>();
          for (const message of consumer.received) {
            if (message.event.op !== 'u') continue;
            const id = message.event.key?.['id'] as number;
            byRow.set(id, [...(byRow.get(id) ?? []), message.event.after?.['version'] as number]);
          }
          return byRow;
        };
        await waitFor(
          'every committed version in Kafka',
          async () => [...committed].every(([id, max]) => (seen().get(id) ?? []).includes(max)),
          { timeoutMs: 120_000, intervalMs: 250 },
        );

        for (const [id, max] of committed) {
          const versions = seen().get(id) ?? [];
          // At least once: every committed version arrived.
          for (let v = 1; v <= max; v += 1) expect(versions, `row ${id} version ${v}`).toContain(v);
          // In order: each message is the next version, or a replay restarting at an earlier one.
          for (let i = 1; i < versions.length; i += 1) {
            const previous = versions[i - 1] as number;
            const current = versions[i] as number;
            expect(
              current === previous + 1 || current <= previous,
              `row ${id}: ${previous} then ${current}`,
            ).toBe(true);
          }
        }
      } finally {
        writing = false;
        await writer.catch(() => {});
        await kill9();
        await consumer.stop();
      }
    },
    300_000,
  );
});
