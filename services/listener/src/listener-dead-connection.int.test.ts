/**
 * A replication connection that dies without closing (failover, network partition: no FIN, no RST)
 * must not leave the listener waiting for the kernel's retransmit timeout while /readyz says ready
 * and lag reads 0. Driven through a TCP proxy that freezes traffic while keeping the sockets open.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createMetricsRegistry } from '@walpurge/core';
import {
  createIsolatedDatabase,
  startFreezableProxy,
  uniqueName,
  waitFor,
  type FreezableProxy,
  type IsolatedDatabase,
} from '@walpurge/testing';
import { listenerConfig, metricValue, startListener } from './test-support/harness.js';
import { RecordingSink } from './testing/recording-sink.js';

const services = inject('services');

describe('listener on a half-open replication connection', () => {
  let db: IsolatedDatabase;
  let client: pg.Client;
  let proxy: FreezableProxy;

  beforeAll(async () => {
    db = await createIsolatedDatabase(services.databaseUrl, 'listener_dead');
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
    // The watchdog never gives up before a whole wal_sender_timeout (60 s by default), within which
    // a busy server pings on its own: a short one, for this database only (a per-connection setting).
    await client.query(`ALTER DATABASE ${db.name} SET wal_sender_timeout = '2s'`);
    await client.query('CREATE TABLE items (id int PRIMARY KEY, v int)');
    const target = new URL(db.url);
    proxy = await startFreezableProxy({ host: target.hostname, port: Number(target.port || 5432) });
  });

  afterAll(async () => {
    await proxy?.close();
    await client?.end();
    await db?.drop();
  });

  it('notices the silence, turns unready with a reason and a lag, reconnects and loses nothing', async () => {
    const slot = uniqueName('frozen');
    const registry = createMetricsRegistry({ defaultMetrics: false });
    const sink = new RecordingSink();
    // Status every 500 ms, each asking for a reply: a live server answers well within a second.
    // Given up after 6 silent intervals (3 s), which leaves a window to look at readiness and lag.
    const config = listenerConfig(proxy.urlFor(db.url), slot, ['items'], {
      statusIntervalMs: 500,
      deadAfterIntervals: 6,
    });
    const listener = await startListener({ config, sink, registry });
    try {
      await client.query('INSERT INTO items VALUES (1, 1)');
      await sink.waitForEvents(1);

      proxy.freeze();
      const frozenAt = Date.now();
      // Committed while the connection is dead: all must arrive once the listener reconnects.
      for (let id = 2; id <= 6; id += 1) await client.query('INSERT INTO items VALUES ($1, 1)', [id]);

      await waitFor('readiness to drop', async () => !listener.isReady(), { timeoutMs: 3000 });
      expect(Date.now() - frozenAt).toBeLessThan(3000);
      expect(listener.notReadyReason()).toMatch(/no message from PostgreSQL/);
      // Not 0 while nothing arrives: the silence so far, at least (the gauge is refreshed every second).
      await waitFor(
        'lag to show the silence',
        async () => ((await metricValue(registry, 'walpurge_listener_replication_lag_seconds')) ?? 0) > 1,
        { timeoutMs: 1500 },
      );

      await waitFor(
        'the watchdog to give the connection up',
        async () => ((await metricValue(registry, 'walpurge_listener_silent_connections_total')) ?? 0) >= 1,
        { timeoutMs: 10_000 },
      );
      // Through the listener's usual reconnect path, which resumes from the durable LSN.
      await waitFor(
        'the reconnect to be counted',
        async () =>
          ((await metricValue(registry, 'walpurge_listener_reconnects_total', {
            reason: 'WP_REPLICATION',
          })) ?? 0) >= 1,
        { timeoutMs: 10_000 },
      );
      expect(listener.isReady()).toBe(false);
      expect(sink.events.map((event) => event.key?.['id'])).toEqual([1]);

      proxy.thaw();
      await waitFor(
        'every row committed during the freeze',
        async () => [2, 3, 4, 5, 6].every((id) => sink.events.some((event) => event.key?.['id'] === id)),
        { timeoutMs: 60_000 },
      );
      await waitFor('streaming again', async () => listener.isReady(), { timeoutMs: 30_000 });
      expect(listener.notReadyReason()).toBeUndefined();
      expect(proxy.connections).toBeGreaterThan(1);
    } finally {
      proxy.thaw(); // else a failed assertion leaves stop() waiting on frozen connections
      await listener.stop();
    }
  });
});
