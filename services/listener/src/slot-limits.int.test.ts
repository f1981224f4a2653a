/**
 * Server limits the shared test PostgreSQL cannot show: a dedicated local cluster with few slots and
 * a tiny max_slot_wal_keep_size (so a lagging slot gets invalidated), restarted later with
 * wal_level=replica. Each case checks the error an operator gets and what it tells them to do.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, createMetricsRegistry, ErrorCode, type WalpurgeError } from '@walpurge/core';
import { startLocalPostgres, uniqueName, waitFor, type LocalPostgres } from '@walpurge/testing';
import { listenerConfig, metricValue, startError, startListener } from './test-support/harness.js';
import { RecordingSink } from './testing/recording-sink.js';

const SETTINGS = { max_replication_slots: 3, max_slot_wal_keep_size: '1MB', wal_keep_size: 0 };

/** The error a listener of table items on `url` fails to start with. */
function startItemsError(url: string, slot: string): Promise<WalpurgeError> {
  return startError({ config: listenerConfig(url, slot, ['items']), sink: new RecordingSink() });
}

describe('listener against server limits (dedicated PostgreSQL)', () => {
  let parent: string;
  let server: LocalPostgres;
  let client: pg.Client;

  const connect = async (): Promise<void> => {
    client = new pg.Client({ connectionString: server.url });
    await client.connect();
  };

  beforeAll(async () => {
    parent = mkdtempSync(join(tmpdir(), 'walpurge-slot-limits-'));
    chmodSync(parent, 0o755); // as root, the cluster runs as the postgres user, who must reach data/
    server = await startLocalPostgres({ dataDir: join(parent, 'data'), settings: SETTINGS });
    await connect();
    await client.query('CREATE TABLE items (id int PRIMARY KEY, v text)');
  });

  afterAll(async () => {
    await client?.end().catch(() => {});
    await server?.stop();
    if (parent) rmSync(parent, { recursive: true, force: true });
  });

  it('refuses to start when no replication slot is free, saying how to fix it', async () => {
    const fillers = [uniqueName('filler'), uniqueName('filler'), uniqueName('filler')];
    for (const name of fillers)
      await client.query("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", [name]);
    try {
      const error = await startItemsError(server.url, uniqueName('nofree'));
      expect(error.code).toBe(ErrorCode.SlotCapacity);
      expect(error.message).toContain('3 of max_replication_slots=3');
      expect(error.hint).toContain('max_replication_slots');
    } finally {
      for (const name of fillers) await client.query('SELECT pg_drop_replication_slot($1)', [name]);
    }
  });

  it('refuses a slot of another output plugin instead of streaming from it', async () => {
    const slot = uniqueName('foreign');
    await client.query("SELECT pg_create_logical_replication_slot($1, 'test_decoding')", [slot]);
    try {
      const error = await startItemsError(server.url, slot);
      expect(error.code).toBe(ErrorCode.DatabaseSetup);
      expect(error.message).toContain('test_decoding');
      expect(error.hint).toContain('database.slot');
      const { rowCount } = await client.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [
        slot,
      ]);
      expect(rowCount).toBe(1); // never dropped: not ours to drop
    } finally {
      await client.query('SELECT pg_drop_replication_slot($1)', [slot]);
    }
  });

  it('detects a slot invalidated by max_slot_wal_keep_size while streaming, fails loudly, and refuses it on restart', async () => {
    const slot = uniqueName('lost');
    const sink = new RecordingSink();
    const fatal: WalpurgeError[] = [];
    const lines: string[] = [];
    const logger = createLogger({
      level: 'warn',
      pretty: false,
      destination: { write: (l) => lines.push(l) },
    });
    const registry = createMetricsRegistry({ defaultMetrics: false });
    const listener = await startListener({
      config: listenerConfig(server.url, slot, ['items']),
      sink,
      logger,
      registry,
      onFatal: (error) => fatal.push(error),
      tuning: { drainTimeoutMs: 200 },
    });
    try {
      // With a max_slot_wal_keep_size, the monitor exports how much WAL may still come before the loss.
      const safe = await waitFor(
        'safe WAL gauge',
        async () => metricValue(registry, 'walpurge_listener_slot_safe_wal_bytes'),
        { timeoutMs: 15_000 },
      );
      expect(safe).toBeGreaterThan(0);
      expect(safe).toBeLessThan(64 * 1024 * 1024);
      // The sink never acknowledges, so the slot's restart_lsn stays at this transaction ...
      sink.block();
      await client.query("INSERT INTO items VALUES (1, 'stuck')");
      // ... while the server moves on by more than max_slot_wal_keep_size and checkpoints.
      await waitFor(
        'slot invalidated',
        async () => {
          await client.query("INSERT INTO items SELECT g, repeat('w', 200) FROM generate_series(2, 3000) g");
          await client.query('DELETE FROM items WHERE id > 1');
          await client.query('SELECT pg_switch_wal()');
          await client.query('CHECKPOINT');
          const { rows } = await client.query<{ wal_status: string | null }>(
            'SELECT wal_status FROM pg_replication_slots WHERE slot_name = $1',
            [slot],
          );
          return rows[0]?.wal_status === 'lost';
        },
        { timeoutMs: 40_000, intervalMs: 50 },
      );
      await waitFor('fatal error reported', async () => fatal.length > 0, { timeoutMs: 30_000 });
      expect(fatal).toHaveLength(1);
      const [error] = fatal as [WalpurgeError];
      expect(error.code).toBe(ErrorCode.SlotInvalidated);
      expect(error.retriable).toBe(false);
      expect(error.message).toContain(slot);
      expect(error.hint).toContain('walpurge slot reset --purge-all');
      expect(error.hint).toContain('max_slot_wal_keep_size');
      expect(listener.isReady()).toBe(false);
      const logged = lines.map((line) => JSON.parse(line) as { level: number; msg: string; hint?: string });
      expect(logged.some((entry) => entry.level >= 60 && entry.msg.includes('invalidated'))).toBe(true);
    } finally {
      sink.release();
      await listener.stop();
    }
    // A restart does not quietly create a new slot or stream from the broken one.
    const again = await startItemsError(server.url, slot);
    expect(again.code).toBe(ErrorCode.SlotInvalidated);
    // The cause on every version: 17+ says wal_removed, 16 only sets conflicting (the column for
    // standby conflicts), 13-15 only wal_status = 'lost'.
    expect(again.message).toContain('was invalidated (wal_removed)');
    await client.query('SELECT pg_drop_replication_slot($1)', [slot]);
  });

  it('explains wal_level below logical (after a restart with wal_level=replica)', async () => {
    const { rows } = await client.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_replication_slots');
    expect(rows[0]?.n).toBe(0); // PostgreSQL refuses to start with logical slots and wal_level=replica
    await client.end();
    await server.stop();
    server = await startLocalPostgres({
      dataDir: join(parent, 'data'),
      settings: { ...SETTINGS, wal_level: 'replica' },
    });
    await connect();
    const error = await startItemsError(server.url, uniqueName('wal'));
    expect(error.code).toBe(ErrorCode.WalLevel);
    expect(error.message).toContain("'replica'");
    expect(error.hint).toContain("ALTER SYSTEM SET wal_level = 'logical'");
  });
});
