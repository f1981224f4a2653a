import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  FLUSH_JOB_NAME,
  flushJobId,
  flushJobOptions,
  rowIdOf,
  stableJson,
  type FlushJobData,
} from '@walpurge/write-behind';
import { startLocalRedis, type LocalRedis } from '@walpurge/testing';
import { ITEMS_DDL, createFixture, metricValue, type Fixture } from './test-support/fixture.js';
import { LatestWrites, checkFinal } from './test-support/invariants.js';

/**
 * BullMQ delivers at least once: a job may run twice (stalled and recovered, redriven, a writer that
 * re-queued), jobs of one row may run out of order, and two flusher replicas may hold jobs of the
 * same row at once. None of that may change the outcome: every row ends at its newest write.
 */
const services = inject('services');
const ROWS = 40;
let queueRedis: LocalRedis;

beforeAll(async () => {
  queueRedis = await startLocalRedis({ persistent: true });
});
afterAll(async () => {
  await queueRedis?.stop();
});

function jobData(id: number): FlushJobData {
  return { rowId: rowIdOf('public.items', { id }), table: 'public.items', key: stableJson({ id }) };
}

async function write(f: Fixture, latest: LatestWrites, round: number): Promise<Map<number, string>> {
  const versions = new Map<number, string>();
  await Promise.all(
    Array.from({ length: ROWS }, async (_, id) => {
      const value = `r${round}-${id}`;
      const { version } = await f.client.writeBehind('items', { id, value, n: round });
      latest.record(id, version, value);
      versions.set(id, version);
    }),
  );
  return versions;
}

describe('flush jobs that run twice or out of order', () => {
  it('duplicate and stale jobs, on two flusher replicas at once, still leave every row at its newest write', async () => {
    const f = await createFixture({
      databaseAdminUrl: services.databaseUrl,
      cacheRedisUrl: services.redisUrl,
      queueRedisUrl: queueRedis.url,
    });
    const queue = new Queue<FlushJobData>(f.config.flusher!.queueName, {
      connection: f.queue,
      prefix: f.layout.bullPrefix,
    });
    try {
      await f.pool.query(ITEMS_DDL);
      const latest = new LatestWrites();
      // No flusher yet: three rounds coalesce into one pending value per row, with one job each.
      await write(f, latest, 0);
      const second = await write(f, latest, 1);
      await write(f, latest, 2);
      expect(await queue.count()).toBe(ROWS);

      // Extra jobs as redelivery would leave them: jobs named after a superseded version (the job a
      // requeue would have added for round 1), added in reverse row order, and plain duplicates.
      // Each must find only the latest pending value, or nothing left to do.
      for (let id = ROWS - 1; id >= 0; id -= 1) {
        const data = jobData(id);
        await queue.add(FLUSH_JOB_NAME, data, flushJobOptions(flushJobId(data.rowId, second.get(id)!), 3));
        await queue.add(FLUSH_JOB_NAME, data, flushJobOptions(`${data.rowId}-dup`, 3));
      }
      expect(await queue.count()).toBe(3 * ROWS);

      // Two replicas (the second takes the origin walpurge_write_behind_2) race for all of them.
      const [a, b] = await Promise.all([
        f.startFlusher({ batchSize: 10, batchDelayMs: 2 }),
        f.startFlusher({ batchSize: 10, batchDelayMs: 2 }),
      ]);
      await f.drained();
      await write(f, latest, 3); // and writes while both are running
      await f.drained();
      await waitForEmptyQueue(queue);
      expect(await checkFinal(f, latest)).toEqual([]);
      const flushed =
        (await metricValue(a.registry, 'walpurge_flusher_rows_flushed_total')) +
        (await metricValue(b.registry, 'walpurge_flusher_rows_flushed_total'));
      expect(flushed).toBeGreaterThanOrEqual(2 * ROWS);
      for (const flusher of [a, b]) {
        expect(
          await metricValue(flusher.registry, 'walpurge_flusher_failures_total', { kind: 'permanent' }),
        ).toBe(0);
      }
      expect(await queue.getFailedCount()).toBe(0);
    } finally {
      await queue.close();
      await f.close();
    }
  });

  it('a settle lost in a crash (commit done, pending entry still there) replays harmlessly; a replayed older value never wins', async () => {
    const f = await createFixture({
      databaseAdminUrl: services.databaseUrl,
      cacheRedisUrl: services.redisUrl,
      queueRedisUrl: queueRedis.url,
    });
    const queue = new Queue<FlushJobData>(f.config.flusher!.queueName, {
      connection: f.queue,
      prefix: f.layout.bullPrefix,
    });
    try {
      await f.pool.query(ITEMS_DDL);
      const latest = new LatestWrites();
      await write(f, latest, 0);
      // Snapshot the pending entries of round 0, as a flusher that crashed after COMMIT but before
      // its compare-and-delete would have left them behind.
      const snapshots = new Map<number, Record<string, string>>();
      for (let id = 0; id < ROWS; id += 1)
        snapshots.set(id, await f.queue.hgetall(f.layout.pending(jobData(id).rowId)));
      await write(f, latest, 1);
      await f.startFlusher({ batchSize: 10 });
      await f.drained();
      expect(await checkFinal(f, latest)).toEqual([]);
      const before = await f.pool.query('SELECT id, value, _walpurge_version FROM items ORDER BY id');

      // Bring back round 0's entries (older than what PostgreSQL holds) with fresh jobs: the
      // version guard must refuse every one, and the entries must still be cleared.
      for (const [id, hash] of snapshots) {
        const data = jobData(id);
        const jobId = `${data.rowId}-replay`;
        await f.queue
          .multi()
          .hset(f.layout.pending(data.rowId), { ...hash, q: jobId })
          .zadd(f.layout.index, Number(hash['s']), data.rowId)
          .exec();
        await queue.add(FLUSH_JOB_NAME, data, flushJobOptions(jobId, 3));
      }
      await f.drained();
      const after = await f.pool.query('SELECT id, value, _walpurge_version FROM items ORDER BY id');
      expect(after.rows).toEqual(before.rows);
      expect(await checkFinal(f, latest)).toEqual([]);
    } finally {
      await queue.close();
      await f.close();
    }
  });
});

async function waitForEmptyQueue(queue: Queue<FlushJobData>): Promise<void> {
  for (let i = 0; i < 200; i += 1) {
    const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
    if (Object.values(counts).every((n) => n === 0)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error('flush queue did not empty');
}
