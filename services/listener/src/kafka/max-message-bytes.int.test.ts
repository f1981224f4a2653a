/**
 * `kafka.maxMessageBytes` from walpurge.yaml reaches the listener's default Kafka sink: a row bigger
 * than the configured limit arrives without its largest column, named in the walpurge-omitted header.
 */
import kafkajs from 'kafkajs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { WalpurgeConfig } from '@walpurge/config';
import { ErrorCode, createMetricsRegistry } from '@walpurge/core';
import { decodeChangeEventV1, type ChangeEvent } from '@walpurge/protocol';
import { createIsolatedDatabase, uniqueName, waitFor, type IsolatedDatabase } from '@walpurge/testing';
import { metricValue, startListener } from '../test-support/harness.js';
import { OMITTED_HEADER } from './message-size.js';

const services = inject('services');

interface Received {
  headers: Record<string, string>;
  bytes: number;
  event: ChangeEvent;
}

describe.each(['kafkajs', 'platformatic'] as const)('kafka.maxMessageBytes (%s)', (producerClient) => {
  let db: IsolatedDatabase;
  let client: pg.Client;

  beforeAll(async () => {
    db = await createIsolatedDatabase(services.databaseUrl, `max_message_bytes_${producerClient}`);
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
    await client.query('CREATE TABLE docs (id int PRIMARY KEY, title text NOT NULL, body text)');
    await client.query('CREATE TABLE long_keys (k text PRIMARY KEY)');
  });

  afterAll(async () => {
    await client?.end();
    await db?.drop();
  });

  it('limits the messages the listener produces to the configured size', async () => {
    const topic = uniqueName('max_bytes');
    const slot = uniqueName('max_bytes');
    const maxMessageBytes = 4096;
    const config = WalpurgeConfig.parse({
      transport: 'kafka',
      database: { url: db.url, slot, publication: slot, tables: ['docs'], heartbeatIntervalMs: 0 },
      kafka: { brokers: services.kafkaBrokers, topic, partitions: 1, maxMessageBytes, producerClient },
    });
    const registry = createMetricsRegistry({ defaultMetrics: false });
    const listener = await startListener({ config, registry });

    const kafka = new kafkajs.Kafka({ brokers: services.kafkaBrokers, logLevel: kafkajs.logLevel.NOTHING });
    const consumer = kafka.consumer({ groupId: uniqueName('group') });
    const received: Received[] = [];
    try {
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      await consumer.run({
        eachMessage: async ({ message }) => {
          const headers: Record<string, string> = {};
          for (const [name, value] of Object.entries(message.headers ?? {})) headers[name] = String(value);
          received.push({
            headers,
            bytes: (message.value as Buffer).length,
            event: decodeChangeEventV1(message.value as Buffer),
          });
        },
      });

      // 3 KB fits into 4096 bytes; 10 KB does not (the default of 1,000,000 would have taken both).
      await client.query("INSERT INTO docs VALUES (1, 'small', repeat('s', 3000))");
      await client.query("INSERT INTO docs VALUES (2, 'big', repeat('b', 10000))");
      await waitFor('2 messages', async () => received.length >= 2, { timeoutMs: 60_000 });

      const [small, big] = received as [Received, Received];
      expect(small.headers[OMITTED_HEADER]).toBeUndefined();
      expect(small.event.after).toEqual({ id: 1, title: 'small', body: 's'.repeat(3000) });
      expect(big.headers[OMITTED_HEADER]).toBe('body');
      expect(big.event.key).toEqual({ id: 2 });
      expect(big.event.after).toEqual({ id: 2, title: 'big' });
      expect(big.bytes).toBeLessThan(maxMessageBytes);
      expect(await registry.getSingleMetricAsString('walpurge_kafka_sink_oversized_events_total')).toContain(
        'walpurge_kafka_sink_oversized_events_total 1',
      );
    } finally {
      await consumer.disconnect();
      await listener.stop();
    }
  });

  // The sink refuses such an event as not retriable, but the replication session treats every sink
  // failure as "replay after a backoff": the listener keeps retrying (and says why) until the limit
  // is raised, and neither skips the event nor publishes anything after it.
  it('holds the slot and retries, publishing nothing, when even the key does not fit', async () => {
    const topic = uniqueName('max_bytes_key');
    const slot = uniqueName('max_bytes_key');
    const config = WalpurgeConfig.parse({
      transport: 'kafka',
      database: { url: db.url, slot, publication: slot, tables: ['long_keys'], heartbeatIntervalMs: 0 },
      kafka: { brokers: services.kafkaBrokers, topic, partitions: 1, maxMessageBytes: 1024, producerClient },
    });
    const registry = createMetricsRegistry({ defaultMetrics: false });
    const listener = await startListener({ config, registry });
    let running = true;
    try {
      await client.query("INSERT INTO long_keys VALUES (repeat('k', 1500))");
      await client.query("INSERT INTO long_keys VALUES ('short')");
      const refusals = async (): Promise<number> =>
        (await metricValue(registry, 'walpurge_listener_reconnects_total', {
          reason: ErrorCode.EventInvalid,
        })) ?? 0;
      await waitFor('two refused attempts', async () => (await refusals()) >= 2, { timeoutMs: 60_000 });
      const kafka = new kafkajs.Kafka({ brokers: services.kafkaBrokers, logLevel: kafkajs.logLevel.NOTHING });
      const admin = kafka.admin();
      await admin.connect();
      try {
        const offsets = await admin.fetchTopicOffsets(topic);
        expect(offsets.map((partition) => partition.high)).toEqual(['0']);
      } finally {
        await admin.disconnect();
      }
      await listener.stop();
      running = false;
      // Peeking needs the slot released (a stop that gave up waiting may leave PostgreSQL a moment behind).
      await waitFor('the slot released', async () => {
        const { rows } = await client.query<{ active: boolean }>(
          'SELECT active FROM pg_replication_slots WHERE slot_name = $1',
          [slot],
        );
        return rows[0]?.active === false;
      });
      // Both inserts are still in the slot (not confirmed): what the slot would replay. Read from the
      // slot itself rather than compared with an LSN taken before the inserts, which other WAL
      // (the listener's own slot-history record) may pass legitimately.
      const inSlot = async (text: string): Promise<number> => {
        const { rows } = await client.query<{ n: number }>(
          `SELECT count(*)::int AS n
             FROM pg_logical_slot_peek_binary_changes($1, NULL, NULL,
                    'proto_version', '1', 'publication_names', $2)
            WHERE position(convert_to($3, 'UTF8') in data) > 0`,
          [slot, slot, text],
        );
        return rows[0]?.n ?? 0;
      };
      expect(await inSlot('k'.repeat(1500)), 'the refused insert is still in the slot').toBe(1);
      expect(await inSlot('short'), 'the insert after it is still in the slot').toBe(1);
    } finally {
      if (running) await listener.stop();
    }
  });
});
