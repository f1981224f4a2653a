import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  SETTLE_SCRIPT,
  LuaScript,
  flushJobId,
  stringArrayReply,
  type FlushJobData,
} from '@walpurge/write-behind';
import { startLocalRedis, waitFor, type LocalRedis } from '@walpurge/testing';
import { reconcilePending } from './reconciler.js';
import { ITEMS_DDL, createFixture, type Fixture } from './test-support/fixture.js';

// The reconciler queues jobs for pending rows left without one by a crash between two steps. It
// runs every reconcileIntervalMs, during outages too, so it must cost O(1) per row.

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
  return f;
}

function queueOf(f: Fixture): Queue<FlushJobData> {
  return new Queue<FlushJobData>(f.config.flusher!.queueName, {
    connection: f.queue,
    prefix: f.layout.bullPrefix,
  });
}

async function valueOf(f: Fixture, id: number): Promise<string | undefined> {
  const { rows } = await f.pool.query<{ value: string }>('SELECT value FROM items WHERE id = $1', [id]);
  return rows[0]?.value;
}

describe('write-behind reconciler', () => {
  it('a writer killed between accept and enqueue: the pending row still reaches PostgreSQL', async () => {
    const f = await fixture();
    const queue = queueOf(f);
    try {
      const accepted = await f.client.writeBehind('items', { id: 1, value: 'orphan', n: null });
      // The writer "crashed" before BullMQ's add: the job was never there.
      expect(await queue.remove(flushJobId(accepted.rowId, accepted.version))).toBe(1);
      expect(await queue.getJobCounts('waiting', 'delayed', 'active')).toMatchObject({
        waiting: 0,
        delayed: 0,
        active: 0,
      });
      await f.startFlusher({ reconcileIntervalMs: 500 });
      await waitFor('the orphaned write reached PostgreSQL', async () => (await valueOf(f, 1)) === 'orphan');
      await f.drained();
    } finally {
      await queue.close();
      await f.close();
    }
  });

  it('a flusher killed after a settle that requeued: the newer write still reaches PostgreSQL', async () => {
    const f = await fixture();
    const queue = queueOf(f);
    try {
      const first = await f.client.writeBehind('items', { id: 2, value: 'first', n: null });
      // A newer write while the first one's job is queued: it waits for that job (no job of its own).
      await f.client.writeBehind('items', { id: 2, value: 'second', n: null });
      // The "flusher" wrote the first version, settled it (the script names a job for the newer
      // write), and was killed before adding that job; its own job completed and was removed.
      const reply = stringArrayReply(
        await new LuaScript(SETTLE_SCRIPT).run(
          f.queue,
          [f.layout.pending(first.rowId), f.layout.index],
          [first.version, first.rowId, Date.now()],
        ),
        'settle',
      );
      expect(reply[0]).toBe('requeue');
      await queue.remove(flushJobId(first.rowId, first.version));
      expect(await queue.getJob(reply[1]!)).toBeUndefined();

      await f.startFlusher({ reconcileIntervalMs: 500 });
      await waitFor('the newer write reached PostgreSQL', async () => (await valueOf(f, 2)) === 'second');
      await f.drained();
    } finally {
      await queue.close();
      await f.close();
    }
  });

  it('costs O(1) per pending row: no scan of BullMQ lists (LPOS), whatever the backlog', async () => {
    const f = await fixture();
    const queue = queueOf(f);
    const monitor = new Redis(queueRedis.url);
    try {
      // A backlog (no flusher running): every row has its job waiting, a few have none.
      const rows = 300;
      const orphans: string[] = [];
      for (let id = 0; id < rows; id += 1) {
        const accepted = await f.client.writeBehind('items', { id, value: `v${id}`, n: null });
        if (id % 100 === 0) {
          await queue.remove(flushJobId(accepted.rowId, accepted.version));
          orphans.push(accepted.rowId);
        }
      }
      const commands: string[] = [];
      const watching = await monitor.monitor();
      watching.on('monitor', (_time: string, args: string[]) => {
        if (args.some((arg) => arg.includes(f.prefix))) commands.push(String(args[0]).toLowerCase());
      });
      const result = await reconcilePending({
        redis: f.queue,
        queue,
        layout: f.layout,
        attempts: 3,
        minAgeMs: 0,
      });
      await waitFor('monitor caught up', () => Promise.resolve(commands.includes('zrangebyscore')));
      expect(commands.filter((command) => command === 'lpos')).toEqual([]);
      expect(result).toEqual({ requeued: orphans.length, marked: 0 });
      expect(
        commands.filter((command) => command === 'evalsha' || command === 'eval').length,
      ).toBeLessThanOrEqual(orphans.length);
      // Each orphan got its job back; the other rows kept theirs.
      expect(await queue.getJobCounts('waiting')).toMatchObject({ waiting: rows });
      watching.disconnect();
    } finally {
      monitor.disconnect();
      await queue.close();
      await f.close();
    }
  });
});
