import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createMetricsRegistry } from '@walpurge/core';
import { compileRules } from '@walpurge/rules';
import { uniqueName } from '@walpurge/testing';
import { changeEvent, logger } from '../../test/harness.js';
import { createInvalidatorMetrics } from '../metrics.js';
import type { Purger } from '../targets/purger.js';
import { LaneBatch } from './lane-batch.js';
import { createCdnLaneMetrics } from './lane-metrics.js';
import { PostgresCdnLane } from './postgres-cdn-lane.js';
import { PostgresCdnQueue, queueTableSql } from './postgres-cdn-queue.js';

/** The inline CDN queue on a real PostgreSQL with a large backlog of a paused provider. */
const services = inject('services');

let db: pg.Client;
const tables: string[] = [];

beforeAll(async () => {
  db = new pg.Client({ connectionString: services.databaseUrl });
  await db.connect();
});
afterAll(async () => {
  for (const table of tables) await db?.query(`DROP TABLE IF EXISTS ${queueTableSql(table)}`);
  await db?.end();
});

/** A CDN provider as the queue sees it: it only asks whether the provider has something to purge. */
const provider = (name: string): Purger => ({
  name,
  stage: 'cdn',
  count: () => 1,
  purge: () => Promise.reject(new Error('the queue never purges')),
  close: () => Promise.resolve(),
});

/** Its stats queries first wait for a shared advisory lock the test holds: a stats query that is slow. */
class SlowStatsQueue extends PostgresCdnQueue {
  constructor(
    options: ConstructorParameters<typeof PostgresCdnQueue>[0],
    private readonly gate: number,
  ) {
    super(options);
  }
  /** stats calls started so far. */
  started = 0;
  override async stats(name: string): Promise<{ depth: number; oldestMs: number | null }> {
    this.started += 1;
    await this.laneQuery('SELECT pg_advisory_lock_shared($1), pg_advisory_unlock_shared($1)', [this.gate]);
    return super.stats(name);
  }
}

const outcome = <T>(promise: Promise<T>, ms: number): Promise<'done' | 'still waiting'> =>
  Promise.race([
    promise.then(() => 'done' as const),
    new Promise<'still waiting'>((resolve) => setTimeout(() => resolve('still waiting'), ms).unref()),
  ]);

describe('the inline CDN queue', () => {
  it('with 300k rows of a paused provider, enqueue completes while stats queries are stuck; depth is capped', async () => {
    const table = uniqueName('cdn_queue_big');
    tables.push(table);
    const gate = Math.floor(Math.random() * 1_000_000_000);
    const queue = new SlowStatsQueue(
      {
        url: services.databaseUrl,
        table,
        rules: compileRules([]),
        providers: [provider('http')],
        logger,
        backoff: { initialMs: 20, maxMs: 200 },
      },
      gate,
    );
    const plain = new PostgresCdnQueue({
      url: services.databaseUrl,
      table,
      rules: compileRules([]),
      providers: [provider('http')],
      logger,
      backoff: { initialMs: 20, maxMs: 200 },
    });
    try {
      await queue.ensureTable();
      await db.query(
        `INSERT INTO ${queueTableSql(table)} (provider, event, enqueued_at)
         SELECT 'http', 'x', now() - interval '1 hour' FROM generate_series(1, 300000)`,
      );
      await db.query('SELECT pg_advisory_lock($1)', [gate]);
      // More stuck stats queries than the queue has connections (ticks piling up on a slow table).
      const stuck = Array.from({ length: 4 }, () => queue.stats('http'));
      const enqueued = queue.enqueue(
        [changeEvent('u', 'items', { key: { id: 1 }, before: null, after: { id: 1 } })],
        new AbortController().signal,
      );
      try {
        expect(await outcome(enqueued, 20_000), 'enqueue while the stats queries wait').toBe('done');
      } finally {
        await db.query('SELECT pg_advisory_unlock($1)', [gate]);
        await Promise.allSettled([...stuck, enqueued]);
      }
      const stats = await plain.stats('http');
      expect(stats.depth).toBe(100_000);
      expect(stats.oldestMs).toBeLessThan(Date.now() - 30 * 60_000);
    } finally {
      await queue.close();
      await plain.close();
    }
  });
});

describe('the inline CDN lane', () => {
  it('never runs a stats refresh while the previous one is still waiting on the database', async () => {
    const table = uniqueName('cdn_queue_ticks');
    tables.push(table);
    const gate = Math.floor(Math.random() * 1_000_000_000);
    const options = {
      url: services.databaseUrl,
      table,
      rules: compileRules([]),
      providers: [provider('http')],
      logger,
      backoff: { initialMs: 20, maxMs: 200 },
    };
    const queue = new SlowStatsQueue(options, gate);
    await queue.ensureTable();
    const registry = createMetricsRegistry({ defaultMetrics: false });
    const metrics = createCdnLaneMetrics(registry);
    const lane = new PostgresCdnLane({
      provider: 'http',
      queue,
      batch: new LaneBatch({
        purger: provider('http'),
        rules: options.rules,
        deadLetters: { send: () => Promise.reject(new Error('nothing is queued')) },
        metrics,
        invalidatorMetrics: createInvalidatorMetrics(registry),
        logger,
        backoff: options.backoff,
        maxUnclassifiedAttempts: 3,
      }),
      metrics,
      logger,
      backoff: options.backoff,
      coalesceWindowMs: 50,
      maxEntriesPerBatch: 100,
    });
    await db.query('SELECT pg_advisory_lock($1)', [gate]);
    lane.start();
    try {
      // Ticks come every second: four of them pass while the first refresh is stuck.
      await new Promise((resolve) => setTimeout(resolve, 4_500));
      expect(queue.started, 'stats refreshes started while the first one waits').toBe(1);
    } finally {
      await db.query('SELECT pg_advisory_unlock($1)', [gate]);
      await lane.stop(1_000);
      await queue.close();
    }
  });
});
