/**
 * Shared pieces of the listener's integration tests: a listener config on an isolated database, a
 * started listener, slot and WAL positions, and metric values read from a registry.
 */
import type pg from 'pg';
import { WalpurgeConfig } from '@walpurge/config';
import {
  createLogger,
  createMetricsRegistry,
  type Logger,
  type Registry,
  type WalpurgeError,
} from '@walpurge/core';
import type { ChangeEvent } from '@walpurge/protocol';
import { waitFor } from '@walpurge/testing';
import { createListener, type Listener, type ListenerOptions } from '../listener.js';

export const testLogger: Logger = createLogger({
  level: process.env['LOG_LEVEL'] ?? 'silent',
  pretty: false,
});

export interface TestConfigOptions {
  /** Tables named by rules (published when `tables` is empty). */
  rulesTables?: string[];
  statusIntervalMs?: number;
  heartbeatIntervalMs?: number;
  deadAfterIntervals?: number;
}

export function listenerConfig(
  url: string,
  slot: string,
  tables: string[],
  options: TestConfigOptions = {},
): WalpurgeConfig {
  return WalpurgeConfig.parse({
    database: {
      url,
      slot,
      publication: slot,
      tables,
      statusIntervalMs: options.statusIntervalMs ?? 500,
      heartbeatIntervalMs: options.heartbeatIntervalMs ?? 0,
      ...(options.deadAfterIntervals === undefined ? {} : { deadAfterIntervals: options.deadAfterIntervals }),
    },
    rules: (options.rulesTables ?? []).map((table) => ({ table, redis: { keys: ['x:{id}'] } })),
  });
}

export type TestListenerOptions = Omit<ListenerOptions, 'logger' | 'registry'> & {
  registry?: Registry;
  logger?: Logger;
};

/** A listener with its own registry (unless given) and a no-op onFatal, not started. */
export function newListener(options: TestListenerOptions): Listener {
  return createListener({
    logger: testLogger,
    registry: createMetricsRegistry({ defaultMetrics: false }),
    onFatal: () => {},
    ...options,
  });
}

/** The error a listener's start fails with (configuration, setup); fails the test if it starts. */
export async function startError(options: TestListenerOptions): Promise<WalpurgeError> {
  const listener = newListener(options);
  try {
    await listener.start(new AbortController().signal);
  } catch (error) {
    return error as WalpurgeError;
  } finally {
    await listener.stop();
  }
  throw new Error('expected the listener to refuse to start');
}

/** Starts a listener and waits until it streams. */
export async function startListener(options: TestListenerOptions): Promise<Listener> {
  const listener = newListener(options);
  await listener.start(new AbortController().signal);
  await waitFor('listener streaming', async () => listener.isReady(), { timeoutMs: 30_000 });
  return listener;
}

export async function confirmedFlush(client: pg.Client, slot: string): Promise<string> {
  const { rows } = await client.query<{ lsn: string | null }>(
    'SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1',
    [slot],
  );
  return rows[0]?.lsn ?? '0/0';
}

export async function currentWalLsn(client: pg.Client): Promise<string> {
  const { rows } = await client.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
  return rows[0]?.lsn as string;
}

export function forTable(events: readonly ChangeEvent[], table: string): ChangeEvent[] {
  return events.filter((event) => event.source.table === table);
}

/** Sum of a metric's samples whose labels include `labels` (`_count`/`_sum` via `sampleName`). */
export async function metricValue(
  registry: Registry,
  name: string,
  labels: Record<string, string> = {},
  sampleName = name,
): Promise<number | undefined> {
  const metric = registry.getSingleMetric(name);
  if (!metric) return undefined;
  const { values } = await metric.get();
  // Histogram samples carry their series name (`_bucket`, `_sum`, `_count`); prom-client's type omits it.
  const matching = values.filter(
    (sample) =>
      ((sample as { metricName?: string }).metricName ?? name) === sampleName &&
      Object.entries(labels).every(([key, value]) => String(sample.labels[key]) === value),
  );
  return matching.length === 0 ? undefined : matching.reduce((sum, sample) => sum + sample.value, 0);
}
