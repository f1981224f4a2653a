import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ErrorCode } from '@walpurge/core';
import {
  createIsolatedDatabase,
  startLocalRedis,
  uniqueName,
  waitFor,
  type IsolatedDatabase,
  type LocalRedis,
} from '@walpurge/testing';
import { writeBehindLayout } from '@walpurge/write-behind';
import { createWriteClient, type WriteClientOptions } from './write-client.js';

/**
 * What "accepted" rests on: the client checks the queue Redis like the flusher does, can wait for a
 * replica before it returns, and hands out versions that keep moving forward when the queue Redis's
 * clock does not (a failover that lost the clock key, or a promoted replica whose clock is behind).
 */
const services = inject('services');
let db: IsolatedDatabase;
let pool: pg.Pool;
let primary: LocalRedis;
let replica: LocalRedis;
const connections: Redis[] = [];

function connect(url: string): Redis {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  connections.push(redis);
  return redis;
}

beforeAll(async () => {
  [db, primary, replica] = await Promise.all([
    createIsolatedDatabase(services.databaseUrl, 'wb_durable'),
    startLocalRedis({ persistent: true }),
    startLocalRedis({ persistent: true }),
  ]);
  pool = new pg.Pool({ connectionString: db.url, max: 2 });
  await pool.query(`CREATE TABLE items (id int PRIMARY KEY, value text NOT NULL,
    _walpurge_version bigint NOT NULL DEFAULT 0)`);
  const replicaClient = connect(replica.url);
  await replicaClient.call('REPLICAOF', '127.0.0.1', String(primary.port));
  await waitFor(
    'replica in sync',
    async () => /master_link_status:up/.test(await replicaClient.info('replication')),
    { timeoutMs: 20_000 },
  );
});
afterAll(async () => {
  for (const redis of connections) redis.disconnect();
  await pool?.end();
  await Promise.all([primary?.stop(), replica?.stop(), db?.drop()]);
});

function client(queueUrl: string, options: Partial<WriteClientOptions> = {}) {
  const prefix = uniqueName('wbd');
  const queueRedis = connect(queueUrl);
  const layout = writeBehindLayout(`${prefix}:wb:`);
  const writes = createWriteClient({
    cacheRedis: connect(services.redisUrl),
    queueRedis,
    database: pool,
    queuePrefix: layout.prefix,
    cacheKeyPrefix: `${prefix}:cache:`,
    ...options,
  });
  return { writes, layout, queueRedis };
}

describe('write-behind durability', () => {
  it('refuses to accept writes on a queue Redis that may lose them, unless allowed', async () => {
    // The shared test Redis has no AOF.
    const unsafe = client(services.redisUrl);
    await expect(unsafe.writes.writeBehind('items', { id: 1, value: 'a' })).rejects.toMatchObject({
      code: ErrorCode.RedisUnsafeForQueue,
    });
    expect(await unsafe.queueRedis.zcard(unsafe.layout.index)).toBe(0);
    const allowed = client(services.redisUrl, { allowUnsafeQueueRedis: true });
    await expect(allowed.writes.writeBehind('items', { id: 1, value: 'a' })).resolves.toMatchObject({
      table: 'public.items',
    });
    await Promise.all([unsafe.writes.close(), allowed.writes.close()]);
  });

  it('durability replica: returns once a replica holds the write, refuses when none confirms', async () => {
    const durable = client(primary.url, { durability: { mode: 'replica', replicas: 1, timeoutMs: 5_000 } });
    const onReplica = connect(replica.url);
    const written = await durable.writes.writeBehind('items', { id: 2, value: 'replicated' });
    // No waiting here: WAIT returned, so the replica already has the pending entry.
    expect(await onReplica.hget(durable.layout.pending(written.rowId), 'v')).toBe(written.version);

    const tooMany = client(primary.url, { durability: { mode: 'replica', replicas: 2, timeoutMs: 200 } });
    await expect(
      tooMany.writes.writeBehind('items', { id: 3, value: 'one replica only' }),
    ).rejects.toMatchObject({
      code: ErrorCode.WriteBehindNotDurable,
      retriable: true,
    });
    await Promise.all([durable.writes.close(), tooMany.writes.close()]);
  });

  it('durability aof is refused with a clear error where the queue Redis cannot honour it', async () => {
    const aof = client(primary.url, { durability: { mode: 'aof', replicas: 0, timeoutMs: 1_000 } });
    const info = await aof.queueRedis.info('server');
    const version = /redis_version:(\d+)\.(\d+)/.exec(info);
    const supported = Number(version?.[1]) > 7 || (Number(version?.[1]) === 7 && Number(version?.[2]) >= 2);
    const result = aof.writes.writeBehind('items', { id: 4, value: 'fsynced' });
    if (supported) await expect(result).resolves.toMatchObject({ table: 'public.items' });
    else
      await expect(result).rejects.toMatchObject({ code: ErrorCode.ConfigInvalid, message: /WAITAOF|aof/ });
    await aof.writes.close();
  });

  it('versions keep moving forward when the queue Redis loses its clock (failover)', async () => {
    const { writes, layout, queueRedis } = client(primary.url);
    const first = await writes.writeBehind('items', { id: 5, value: 'a' });
    // A version handed out just before the failover, from a clock ahead of the new primary's.
    await queueRedis.set(layout.clock, String(BigInt(first.version) + 60_000_000n));
    const beforeFailover = await writes.writeBehind('items', { id: 6, value: 'b' });
    // The promoted replica never received the clock key.
    await queueRedis.del(layout.clock);
    const afterOtherRow = await writes.writeBehind('items', { id: 7, value: 'c' });
    expect(BigInt(afterOtherRow.version)).toBeGreaterThan(BigInt(beforeFailover.version));
    const through = await writes.writeThrough('items', { id: 8, value: 'd' });
    expect(BigInt(through.version)).toBeGreaterThan(BigInt(afterOtherRow.version));
    await writes.close();
  });
});
