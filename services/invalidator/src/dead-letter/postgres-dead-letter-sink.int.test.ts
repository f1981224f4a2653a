import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { WalpurgeConfig } from '@walpurge/config';
import { createMetricsRegistry, isRetriable } from '@walpurge/core';
import { createIsolatedDatabase, uniqueName, waitFor, type IsolatedDatabase } from '@walpurge/testing';
import { changeEvent, deleteKeys, logger, metricValue } from '../../test/harness.js';
import { TcpProxy } from '../../test/tcp-proxy.js';
import { createInvalidator } from '../create-invalidator.js';
import { createInvalidatorMetrics } from '../metrics.js';
import { PostgresDeadLetterSink } from './postgres-dead-letter-sink.js';

/**
 * The inline dead-letter table keeps the event safe or says loudly that it cannot: a database that
 * is away is waited for (send resolves only once the row is there), one that refuses the insert
 * for good (table dropped) makes the handle reject, so the LSN is not acknowledged.
 */
const services = inject('services');
let database: IsolatedDatabase;
let db: pg.Client;
let redis: Redis;
const prefix = `${uniqueName('pg_dlq')}:`;

beforeAll(async () => {
  database = await createIsolatedDatabase(services.databaseUrl, 'pg_dlq');
  db = new pg.Client({ connectionString: database.url });
  await db.connect();
  redis = new Redis(services.redisUrl);
});
afterAll(async () => {
  await db?.end().catch(() => {});
  await deleteKeys(redis, prefix);
  redis?.disconnect();
  await database?.drop();
});

const post = (id: number) => changeEvent('c', 'posts', { key: { id }, before: null, after: { id } });
const backoff = { initialMs: 20, maxMs: 200, multiplier: 2, jitter: 0.5 };

describe('the dead-letter table (inline transport)', () => {
  it('waits for a database that is away: send resolves only once the row is stored', async () => {
    const target = new URL(database.url);
    const proxy = new TcpProxy(target.hostname, Number(target.port));
    await proxy.start();
    const url = new URL(database.url);
    url.hostname = '127.0.0.1';
    url.port = String(proxy.port);
    const table = 'away_dead_letters';
    const sink = new PostgresDeadLetterSink({
      url: url.toString(),
      table,
      metrics: createInvalidatorMetrics(createMetricsRegistry({ defaultMetrics: false })),
      logger,
      backoff,
    });
    try {
      await sink.start();
      await proxy.stop();
      let settled = false;
      const sent = sink
        .send(
          { event: post(1), cause: 'purge-rejected', error: new Error('no'), target: 'redis', rules: ['r'] },
          new AbortController().signal,
        )
        .finally(() => (settled = true));
      // Several attempts fail while it is away, and send has not resolved.
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      expect(settled).toBe(false);
      expect((await db.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0]).toEqual({ n: 0 });
      await proxy.start();
      await sent;
      expect((await db.query(`SELECT table_name, rules FROM ${table}`)).rows).toEqual([
        { table_name: 'public.posts', rules: ['r'] },
      ]);
    } finally {
      await proxy.stop();
      await sink.close();
    }
  });

  it('a table that refuses the insert for good makes the handle reject (not retriable) instead of acknowledging', async () => {
    const table = 'dropped_dead_letters';
    const registry = createMetricsRegistry({ defaultMetrics: false });
    const config = WalpurgeConfig.parse({
      database: { url: database.url, deadLetterTable: table },
      redis: { url: services.redisUrl, keyPrefix: prefix },
      invalidator: { retryInitialMs: 20, retryMaxMs: 200 },
      rules: [{ table: 'posts', name: 'posts', on: ['insert'], redis: { tags: ['post-{id}'] } }],
    });
    const invalidator = createInvalidator({
      config,
      logger,
      registry,
      consume: 'none',
      validateSchema: false,
    });
    await invalidator.start(new AbortController().signal);
    try {
      await redis.set(`${prefix}tag:post-1`, 'not a set');
      await redis.set(`${prefix}tag:post-2`, 'not a set');
      await invalidator.handle([post(1)]);
      expect((await db.query(`SELECT rules, target FROM ${table}`)).rows).toEqual([
        { rules: ['posts'], target: 'redis' },
      ]);
      await db.query(`DROP TABLE ${table}`);
      const error = await invalidator.handle([post(2)]).then(
        () => undefined,
        (rejection: unknown) => rejection,
      );
      expect(error).toBeInstanceOf(Error);
      expect((error as Error).message).toMatch(
        /^cannot store a dead letter in dropped_dead_letters: .*does not exist/,
      );
      expect(isRetriable(error)).toBe(false);
      await waitFor(
        'both refusals counted',
        async () =>
          (await metricValue(registry, 'walpurge_invalidator_rejected_events_total', {
            transport: 'inline',
          })) === 2,
        { timeoutMs: 5_000 },
      );
      expect(
        await metricValue(registry, 'walpurge_invalidator_dead_letters_total', { reason: 'purge-rejected' }),
      ).toBe(1);
    } finally {
      await invalidator.stop();
    }
  });
});
