/**
 * The listener's memory bound is in bytes (`database.maxPendingBytes`), not in events: a few
 * hundred rows of 100 kB each, in one transaction, read while Kafka acknowledges slowly, must never
 * hold more than the budget plus one event, and must all reach the topic.
 */
import kafkajs from 'kafkajs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { KafkaConfig } from '@walpurge/config';
import { createMetricsRegistry, sleep } from '@walpurge/core';
import { decodeChangeEventV1, type ChangeEvent } from '@walpurge/protocol';
import { createIsolatedDatabase, uniqueName, waitFor, type IsolatedDatabase } from '@walpurge/testing';
import { createKafkaSink } from './kafka/kafka-sink.js';
import type { ListenerSink } from './listener.js';
import { decodedEventBytes, pendingEventBytes } from './stream/pending-bytes.js';
import { listenerConfig, metricValue, startListener, testLogger } from './test-support/harness.js';

const services = inject('services');

const ROWS = 200;
/** 3125 md5 hex strings: 100,000 bytes that TOAST cannot compress away. */
const ROW_SQL = `SELECT g, (SELECT string_agg(md5(g::text || '.' || i::text), '') FROM generate_series(1, 3125) i)
                   FROM generate_series(1, ${ROWS}) g`;
const BUDGET = 1_000_000;

/**
 * The real Kafka sink, with every acknowledgement held back a little (a slow broker) and the bytes
 * it holds measured independently of the listener's own gauge.
 */
function measuredSlowSink(topic: string) {
  const kafka = createKafkaSink({
    config: KafkaConfig.parse({ brokers: services.kafkaBrokers, topic, partitions: 1 }),
    logger: testLogger,
  });
  return measuredSlowly(
    {
      preservesCallOrder: true,
      eventBytes: pendingEventBytes,
      connect: () => kafka.connect(),
      close: () => kafka.close(),
      publish: (events, signal) => kafka.publish(events, signal),
    },
    pendingEventBytes,
  );
}

/**
 * `inner`, acknowledged no sooner than 30 ms after each call, with the bytes it holds measured by
 * `weigh` (the measure the listener is expected to use for that sink).
 */
function measuredSlowly(inner: ListenerSink, weigh: (event: ChangeEvent) => number) {
  const stats = { heldBytes: 0, peakHeldBytes: 0, largestEvent: 0, acknowledged: new Set<unknown>() };
  const sink: ListenerSink = {
    ...inner,
    async publish(events: readonly ChangeEvent[], signal?: AbortSignal) {
      const sizes = events.map((event) => weigh(event));
      const bytes = sizes.reduce((sum, size) => sum + size, 0);
      stats.largestEvent = Math.max(stats.largestEvent, ...sizes);
      stats.heldBytes += bytes;
      stats.peakHeldBytes = Math.max(stats.peakHeldBytes, stats.heldBytes);
      try {
        // Sent at once (call order kept), acknowledged to the listener no sooner than 30 ms later.
        await Promise.all([inner.publish(events, signal), sleep(30)]);
        for (const event of events) stats.acknowledged.add(event.key?.['id']);
      } finally {
        stats.heldBytes -= bytes;
      }
    },
  };
  return { sink, stats };
}

async function idsOnTopic(topic: string, expected: number): Promise<Set<unknown>> {
  const kafka = new kafkajs.Kafka({
    clientId: 'listener-memory-test',
    brokers: services.kafkaBrokers,
    logLevel: kafkajs.logLevel.NOTHING,
  });
  const consumer = kafka.consumer({ groupId: uniqueName('group') });
  const ids = new Set<unknown>();
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => {
        ids.add(decodeChangeEventV1(message.value as Buffer).key?.['id']);
      },
    });
    await waitFor(`${expected} ids on ${topic}`, async () => ids.size >= expected, { timeoutMs: 60_000 });
  } finally {
    await consumer.disconnect();
  }
  return ids;
}

describe('listener memory bound', () => {
  let db: IsolatedDatabase;
  let client: pg.Client;

  beforeAll(async () => {
    db = await createIsolatedDatabase(services.databaseUrl, 'listener_memory');
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
    await client.query('CREATE TABLE blobs (id int PRIMARY KEY, body text)');
  });

  afterAll(async () => {
    await client?.end();
    await db?.drop();
  });

  /** Runs the listener over ROWS rows of ~100 kB into `sink` with the budget; returns the peak gauge. */
  async function runBounded(sink: ListenerSink, stats: { acknowledged: Set<unknown> }, slot: string) {
    const registry = createMetricsRegistry({ defaultMetrics: false });
    const base = listenerConfig(db.url, slot, ['blobs']);
    const config = { ...base, database: { ...base.database!, maxPendingBytes: BUDGET } };
    await client.query('TRUNCATE blobs');
    const listener = await startListener({ config, sink, registry });
    let peakGauge = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        peakGauge = Math.max(
          peakGauge,
          (await metricValue(registry, 'walpurge_listener_pending_bytes')) ?? 0,
        );
        await sleep(20);
      }
    })();
    try {
      await client.query(`INSERT INTO blobs ${ROW_SQL}`);
      await waitFor('every row acknowledged by the sink', async () => stats.acknowledged.size >= ROWS, {
        timeoutMs: 120_000,
      });
    } finally {
      sampling = false;
      await sampler;
      await listener.stop();
    }
    const pauses = (await metricValue(registry, 'walpurge_listener_backpressure_pauses_total')) ?? 0;
    return { peakGauge, pauses };
  }

  it('keeps the encoded bytes of pending events within maxPendingBytes + one event, and delivers every row', async () => {
    const slot = uniqueName('membound');
    const topic = uniqueName('membound');
    const { sink, stats } = measuredSlowSink(topic);
    const { peakGauge, pauses } = await runBounded(sink, stats, slot);
    // 200 events of ~100 kB: 20 MB in all, far above the budget; without the bound they are all held.
    expect(stats.largestEvent).toBeGreaterThan(100_000);
    expect(stats.peakHeldBytes).toBeLessThanOrEqual(BUDGET + stats.largestEvent);
    expect(stats.peakHeldBytes).toBeGreaterThan(BUDGET / 4);
    expect(peakGauge).toBeGreaterThan(0);
    expect(peakGauge).toBeLessThanOrEqual(BUDGET + stats.largestEvent);
    expect(pauses).toBeGreaterThan(0);
    const ids = await idsOnTopic(topic, ROWS);
    expect(ids.size).toBe(ROWS);
  });

  it('a sink that does not weigh events (the inline transport) is bounded the same way, by their decoded size', async () => {
    const { sink, stats } = measuredSlowly({ publish: async () => undefined }, decodedEventBytes);
    expect(sink.eventBytes).toBeUndefined();
    const { peakGauge, pauses } = await runBounded(sink, stats, uniqueName('membound_inline'));
    expect(stats.largestEvent).toBeGreaterThan(100_000);
    expect(stats.peakHeldBytes).toBeLessThanOrEqual(BUDGET + stats.largestEvent);
    expect(stats.peakHeldBytes).toBeGreaterThan(BUDGET / 4);
    expect(peakGauge).toBeLessThanOrEqual(BUDGET + stats.largestEvent);
    expect(pauses).toBeGreaterThan(0);
    expect(stats.acknowledged.size).toBe(ROWS);
  });
});
