import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { writeBehindLayout, type FlushJobData } from '@walpurge/write-behind';
import { deleteRedisKeys, uniqueName } from '@walpurge/testing';
import { markFailedOrRequeue } from './mark-failed.js';

const layout = writeBehindLayout(`${uniqueName('markfailed')}:`);
let redis: Redis;
let queue: Queue<FlushJobData>;

beforeAll(() => {
  redis = new Redis(inject('services').redisUrl, { maxRetriesPerRequest: null });
  queue = new Queue<FlushJobData>('flush', { connection: redis, prefix: layout.bullPrefix });
});
afterAll(async () => {
  await queue.close();
  await deleteRedisKeys(redis, layout.prefix);
  await redis.quit();
});

const data = (rowId: string): FlushJobData => ({ rowId, table: 'public.items', key: '{"id":1}' });

async function entry(rowId: string, fields: Record<string, string>): Promise<void> {
  await redis.hset(layout.pending(rowId), {
    t: 'public.items',
    k: '{"id":1}',
    r: '{}',
    op: 'u',
    s: '1',
    ...fields,
  });
}

describe('MARK_FAILED', () => {
  const context = () => ({ redis, queue, layout, attempts: 3 });

  it('marks the entry when its value is the one that failed', async () => {
    await entry('r1', { v: '10', q: 'r1-10' });
    expect(await markFailedOrRequeue(context(), data('r1'), 'r1-10', '10')).toBe('failed');
    expect(await redis.hget(layout.pending('r1'), 'f')).toBe('r1-10');
  });

  it('queues the newer write accepted meanwhile instead of leaving it behind the failed job', async () => {
    await entry('r2', { v: '12', q: 'r2-10' });
    expect(await markFailedOrRequeue(context(), data('r2'), 'r2-10', '10')).toBe('requeued');
    expect(await redis.hmget(layout.pending('r2'), 'q', 'f')).toEqual(['r2-12', null]);
    expect((await queue.getJob('r2-12'))?.data).toEqual(data('r2'));
  });

  it('changes nothing when another job already took over the row, or the entry is gone', async () => {
    await entry('r3', { v: '14', q: 'r3-14' });
    expect(await markFailedOrRequeue(context(), data('r3'), 'r3-10', '10')).toBe('superseded');
    expect(await redis.hmget(layout.pending('r3'), 'q', 'f')).toEqual(['r3-14', null]);
    expect(await markFailedOrRequeue(context(), data('r4'), 'r4-10', '10')).toBe('gone');
  });
});
