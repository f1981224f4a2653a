/**
 * The listener against a real PostgreSQL when things go wrong or stay quiet: a terminated walsender,
 * writes that never reach the publication (another database), heartbeats, and the metrics an
 * operator watches while that happens.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ErrorCode, WalpurgeError, createLogger, createMetricsRegistry } from '@walpurge/core';
import { compareLsn, parseLsn } from '@walpurge/protocol';
import { createIsolatedDatabase, uniqueName, waitFor, type IsolatedDatabase } from '@walpurge/testing';
import {
  confirmedFlush,
  currentWalLsn,
  listenerConfig,
  metricValue,
  startListener,
} from './test-support/harness.js';
import { RecordingSink } from './testing/recording-sink.js';

const services = inject('services');

const SLOT_GAUGES = [
  'walpurge_listener_replication_lag_bytes',
  'walpurge_listener_replication_lag_seconds',
  'walpurge_listener_slot_retained_wal_bytes',
  'walpurge_listener_durable_lsn',
  'walpurge_listener_pending_events',
];

describe('listener resilience and observability', () => {
  let db: IsolatedDatabase;
  let client: pg.Client;

  beforeAll(async () => {
    db = await createIsolatedDatabase(services.databaseUrl, 'listener_resil');
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
    await client.query('CREATE TABLE items (id int PRIMARY KEY, v int)');
  });

  afterAll(async () => {
    await client?.end();
    await db?.drop();
  });

  it('reconnects with backoff when its walsender is terminated, loses nothing and counts the reconnect', async () => {
    const slot = uniqueName('term');
    const registry = createMetricsRegistry({ defaultMetrics: false });
    const sink = new RecordingSink();
    const listener = await startListener({ config: listenerConfig(db.url, slot, ['items']), sink, registry });
    try {
      await client.query('INSERT INTO items VALUES (1, 1)');
      await sink.waitForEvents(1);
      for (let round = 0; round < 2; round += 1) {
        const { rows } = await client.query<{ pid: number }>(
          'SELECT pg_terminate_backend(active_pid) AS ok, active_pid AS pid FROM pg_replication_slots WHERE slot_name = $1',
          [slot],
        );
        expect(rows[0]?.pid).toBeTypeOf('number');
        // Written while the listener is (or is about to be) disconnected.
        await client.query('INSERT INTO items VALUES ($1, 1)', [10 + round]);
        await waitFor(
          `row ${10 + round} after reconnect`,
          async () => sink.events.some((event) => event.key?.['id'] === 10 + round),
          { timeoutMs: 30_000 },
        );
      }
      await waitFor('streaming again', async () => listener.isReady(), { timeoutMs: 30_000 });
      const reconnects = await metricValue(registry, 'walpurge_listener_reconnects_total');
      expect(reconnects).toBeGreaterThanOrEqual(2);
      expect(sink.events.map((event) => event.key?.['id'])).toEqual(expect.arrayContaining([1, 10, 11]));
      const wal = await currentWalLsn(client);
      await waitFor(
        'slot confirmed after the reconnects',
        async () => compareLsn(await confirmedFlush(client, slot), wal) >= 0,
        { timeoutMs: 30_000 },
      );
    } finally {
      await listener.stop();
    }
  });

  it('backs off further on every failed attempt while the sink keeps failing, even though each attempt streams', async () => {
    const slot = uniqueName('backoff');
    const sink = new RecordingSink();
    const lines: string[] = [];
    const logger = createLogger({
      level: 'warn',
      pretty: false,
      destination: { write: (l) => lines.push(l) },
    });
    const retries = (): number[] =>
      lines
        .map((line) => JSON.parse(line) as { msg: string; retryInMs?: number })
        .filter((entry) => entry.msg.startsWith('listener will reconnect'))
        .map((entry) => entry.retryInMs as number);
    const listener = await startListener({ config: listenerConfig(db.url, slot, ['items']), sink, logger });
    try {
      sink.failWith = new WalpurgeError(ErrorCode.KafkaUnavailable, 'broker rejects', { retriable: true });
      await client.query('INSERT INTO items VALUES (500, 1)');
      await waitFor('four failed attempts', async () => retries().length >= 4, { timeoutMs: 30_000 });
      // Default backoff: attempt n waits 200·2ⁿ ms, jittered down to half. Had a session that streamed
      // but acknowledged nothing reset the backoff, every wait would stay ≤ 200 ms: a hot loop.
      const [first, , , fourth] = retries() as [number, number, number, number];
      expect(first).toBeLessThanOrEqual(200);
      expect(fourth).toBeGreaterThanOrEqual(800);
      sink.failWith = undefined;
      await waitFor(
        'row 500 after the sink recovers',
        async () => sink.events.some((event) => event.key?.['id'] === 500),
        { timeoutMs: 30_000 },
      );
    } finally {
      await listener.stop();
    }
  });

  it('reports a slot dropped behind its back as fatal data loss instead of quietly creating a new one', async () => {
    const slot = uniqueName('dropped');
    const fatal: WalpurgeError[] = [];
    const listener = await startListener({
      config: listenerConfig(db.url, slot, ['items']),
      sink: new RecordingSink(),
      onFatal: (error) => fatal.push(error),
    });
    try {
      await waitFor(
        'slot dropped',
        async () => {
          await client.query(
            'SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active',
            [slot],
          );
          // Fails while the terminated walsender still holds the slot: try again.
          await client.query('SELECT pg_drop_replication_slot($1)', [slot]);
          return true;
        },
        { timeoutMs: 15_000, intervalMs: 20 },
      );
      await waitFor('fatal error', async () => fatal.length > 0, { timeoutMs: 30_000 });
      expect(fatal[0]?.code).toBe(ErrorCode.SlotMissing);
      expect(fatal[0]?.hint).toContain('walpurge slot reset --purge-all');
      const { rowCount } = await client.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [
        slot,
      ]);
      expect(rowCount).toBe(0);
    } finally {
      await listener.stop();
    }
  });

  it('lets the slot follow the WAL while only another database is written (idle-slot advancement)', async () => {
    const slot = uniqueName('otherdb');
    const other = await createIsolatedDatabase(services.databaseUrl, 'listener_other');
    const listener = await startListener({
      config: listenerConfig(db.url, slot, ['items']),
      sink: new RecordingSink(),
    });
    const otherClient = new pg.Client({ connectionString: other.url });
    try {
      await otherClient.connect();
      const start = await confirmedFlush(client, slot);
      await otherClient.query(
        "CREATE TABLE noise (id serial PRIMARY KEY, v text); INSERT INTO noise (v) SELECT 'x' FROM generate_series(1, 5000)",
      );
      const target = await currentWalLsn(otherClient);
      expect(compareLsn(target, start)).toBe(1);
      await waitFor(
        'confirmed_flush_lsn to pass the other database’s writes',
        async () => compareLsn(await confirmedFlush(client, slot), target) >= 0,
        { timeoutMs: 30_000, intervalMs: 200 },
      );
    } finally {
      await listener.stop();
      await otherClient.end().catch(() => {});
      await other.drop();
    }
  });

  it('emits heartbeats into the WAL via pg_logical_emit_message and confirms past them', async () => {
    const slot = uniqueName('hb');
    const probe = uniqueName('probe');
    // A second slot on this database sees our heartbeats (logical messages are per database).
    await client.query("SELECT pg_create_logical_replication_slot($1, 'test_decoding')", [probe]);
    const listener = await startListener({
      config: listenerConfig(db.url, slot, ['items'], { heartbeatIntervalMs: 200 }),
      sink: new RecordingSink(),
    });
    try {
      const heartbeat = await waitFor(
        'a heartbeat message in the WAL',
        async () => {
          const { rows } = await client.query<{ lsn: string; data: string }>(
            'SELECT lsn::text AS lsn, data FROM pg_logical_slot_peek_changes($1, NULL, NULL)',
            [probe],
          );
          return rows.find((row) => row.data.includes('walpurge.heartbeat'));
        },
        { timeoutMs: 15_000, intervalMs: 200 },
      );
      expect(heartbeat.data).toContain('transactional: 0');
      await waitFor(
        'slot confirmed past the heartbeat',
        async () => compareLsn(await confirmedFlush(client, slot), heartbeat.lsn) >= 0,
        { timeoutMs: 30_000, intervalMs: 200 },
      );
    } finally {
      await listener.stop();
      await client.query('SELECT pg_drop_replication_slot($1)', [probe]);
    }
  });

  it('exports events, bytes, commit→ack latency, lag, retained WAL and durable LSN with sensible values', async () => {
    const slot = uniqueName('metrics');
    const registry = createMetricsRegistry({ defaultMetrics: false });
    const sink = new RecordingSink();
    const listener = await startListener({
      config: listenerConfig(db.url, slot, ['items'], { statusIntervalMs: 200 }),
      sink,
      registry,
    });
    try {
      await client.query('INSERT INTO items SELECT g, 0 FROM generate_series(100, 149) g');
      await client.query('UPDATE items SET v = 1 WHERE id BETWEEN 100 AND 109');
      await client.query('DELETE FROM items WHERE id BETWEEN 100 AND 104');
      await sink.waitForEvents(65);
      const events = (op: string): Promise<number | undefined> =>
        metricValue(registry, 'walpurge_listener_events_total', { table: 'public.items', op });
      // Counters are flushed once a second (cheap on the hot path).
      await waitFor('event counters', async () => (await events('d')) === 5, { timeoutMs: 10_000 });
      expect(await events('c')).toBe(50);
      expect(await events('u')).toBe(10);

      const received = await metricValue(registry, 'walpurge_listener_received_bytes_total');
      expect(received).toBeGreaterThan(65 * 20); // every row change is at least ~20 bytes of pgoutput
      const latencyCount = await metricValue(
        registry,
        'walpurge_listener_commit_to_ack_seconds',
        {},
        'walpurge_listener_commit_to_ack_seconds_count',
      );
      const latencySum = await metricValue(
        registry,
        'walpurge_listener_commit_to_ack_seconds',
        {},
        'walpurge_listener_commit_to_ack_seconds_sum',
      );
      expect(latencyCount).toBeGreaterThanOrEqual(3);
      expect(latencySum).toBeGreaterThanOrEqual(0);
      expect((latencySum as number) / (latencyCount as number)).toBeLessThan(60);
      expect(await metricValue(registry, 'walpurge_listener_transactions_total')).toBeGreaterThanOrEqual(3);

      // Slot numbers come from the monitor's poll (every ≥ 1 s).
      await waitFor(
        'retained WAL gauge',
        async () => ((await metricValue(registry, 'walpurge_listener_slot_retained_wal_bytes')) ?? 0) > 0,
        { timeoutMs: 15_000 },
      );
      // Two instances (or slots) side by side stay apart: every slot gauge names its slot and database
      // (safe WAL only exists under a max_slot_wal_keep_size, so it may have no series at all).
      const labelSets = async (name: string): Promise<unknown[]> =>
        ((await registry.getSingleMetric(name)?.get())?.values ?? []).map((sample) => sample.labels);
      for (const name of SLOT_GAUGES)
        expect(await labelSets(name), name).toEqual([{ slot, database: db.name }]);
      expect([[], [{ slot, database: db.name }]]).toContainEqual(
        await labelSets('walpurge_listener_slot_safe_wal_bytes'),
      );
      const lagBytes = await metricValue(registry, 'walpurge_listener_replication_lag_bytes');
      expect(lagBytes).toBeGreaterThanOrEqual(0);
      expect(lagBytes).toBeLessThan(1024 ** 3);
      expect(await metricValue(registry, 'walpurge_listener_replication_lag_seconds')).toBe(0);
      expect(await metricValue(registry, 'walpurge_listener_streaming')).toBe(1);
      expect(await metricValue(registry, 'walpurge_listener_pending_events')).toBe(0);
      const durable = await metricValue(registry, 'walpurge_listener_durable_lsn');
      expect(durable).toBeGreaterThan(0);
      expect(durable).toBeLessThanOrEqual(Number(parseLsn(await currentWalLsn(client))));
      expect(await registry.metrics()).toContain('walpurge_listener_reconnects_total');
    } finally {
      await listener.stop();
    }
    expect(await metricValue(registry, 'walpurge_listener_streaming')).toBe(0);
    // A stopped pod must not go on reporting the slot's last figures for alerts to read.
    for (const name of SLOT_GAUGES) expect(await metricValue(registry, name), name).toBeUndefined();
    expect(await metricValue(registry, 'walpurge_listener_transactions_total')).toBeGreaterThanOrEqual(3);
  });
});
