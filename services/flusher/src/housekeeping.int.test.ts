import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { tombstoneTableDdl, type FlushJobData } from '@walpurge/write-behind';
import { startLocalRedis, waitFor, type LocalRedis } from '@walpurge/testing';
import { listFailedWrites } from './failed-writes.js';
import { pruneFailedJobs, pruneTombstones } from './housekeeping.js';
import { ITEMS_DDL, createFixture, type Fixture } from './test-support/fixture.js';

const services = inject('services');
let queueRedis: LocalRedis;

beforeAll(async () => {
  queueRedis = await startLocalRedis({ persistent: true });
});
afterAll(async () => {
  await queueRedis?.stop();
});

async function fixture(): Promise<Fixture> {
  const f = await createFixture({
    databaseAdminUrl: services.databaseUrl,
    cacheRedisUrl: services.redisUrl,
    queueRedisUrl: queueRedis.url,
  });
  await f.pool.query(ITEMS_DDL);
  for (const statement of tombstoneTableDdl(f.config.flusher!.tombstoneTable)) await f.pool.query(statement);
  return f;
}

function queueOf(f: Fixture): Queue<FlushJobData> {
  return new Queue<FlushJobData>(f.config.flusher!.queueName, {
    connection: f.queue,
    prefix: f.layout.bullPrefix,
  });
}

describe('write-behind housekeeping', () => {
  it('keeps an expired tombstone while an older write of its row is still pending: the row is not resurrected', async () => {
    const f = await fixture();
    try {
      // An old write still waiting (a backlog, or a failed write kept for redrive) …
      const pending = await f.client.writeBehind('items', { id: 1, value: 'stale', n: null });
      // … and a newer delete of the same row, whose tombstone is past its retention.
      const table = f.config.flusher!.tombstoneTable;
      await f.pool.query(
        `INSERT INTO ${table} (table_name, row_key, version, deleted_at) VALUES
           ('public.items', '{"id":1}', $1, now() - interval '2 days'),
           ('public.items', '{"id":2}', 1, now() - interval '2 days')`,
        [String(BigInt(pending.version) + 1n)],
      );
      const client = await f.pool.connect();
      try {
        const pruned = await pruneTombstones({
          client,
          redis: f.queue,
          layout: f.layout,
          tombstoneTable: table,
          retentionMs: 86_400_000,
        });
        expect(pruned).toBe(1);
      } finally {
        client.release();
      }
      const { rows } = await f.pool.query<{ row_key: unknown }>(`SELECT row_key FROM ${table}`);
      expect(rows).toEqual([{ row_key: { id: 1 } }]);

      await f.startFlusher();
      await f.drained();
      expect((await f.pool.query('SELECT * FROM items')).rows).toEqual([]);
    } finally {
      await f.close();
    }
  });

  it('prunes failed jobs whose row was written since, and keeps the one still standing for an unwritten value', async () => {
    const f = await fixture();
    const queue = queueOf(f);
    try {
      await f.startFlusher();
      await f.client.writeBehind('items', { id: 1, value: 'x', n: -1 });
      await f.client.writeBehind('items', { id: 2, value: 'x', n: -1 });
      await waitFor(
        'two failed writes',
        async () => (await listFailedWrites({ config: f.config })).length === 2,
      );
      await f.client.writeBehind('items', { id: 2, value: 'fixed', n: 1 });
      await waitFor(
        'row 2 written',
        async () => (await f.pool.query('SELECT 1 FROM items WHERE id = 2')).rowCount === 1,
      );
      await waitFor('row 2 settled', async () => (await f.queue.zcard(f.layout.index)) === 1);

      expect(await pruneFailedJobs({ redis: f.queue, queue, layout: f.layout, retentionMs: 0 })).toBe(1);
      const left = await listFailedWrites({ config: f.config });
      expect(left.map((write) => write.key)).toEqual(['{"id":1}']);
      expect(left[0]?.superseded).toBe(false);
    } finally {
      await queue.close();
      await f.close();
    }
  });
});
