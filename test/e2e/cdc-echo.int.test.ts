import { Kafka, logLevel } from 'kafkajs';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createCacheClient, type CacheClient } from '@walpurge/client';
import { createWriteClientFromConfig, type WriteClient } from '@walpurge/client/write';
import {
  createIsolatedDatabase,
  startLocalRedis,
  uniqueName,
  waitFor,
  type IsolatedDatabase,
  type LocalRedis,
} from '@walpurge/testing';
import {
  E2E_STACK_CONFIG,
  parseE2eConfig,
  startStack,
  type WalpurgeStack,
} from './support/walpurge-stack.js';

/**
 * CDC echo (issue 5), end to end: application → write-behind (@walpurge/client) → flusher →
 * PostgreSQL → listener → [Kafka] → invalidator. The flusher's own commits come back through the
 * commit log; they must not purge the entry the write just set (read-your-writes), while entries
 * derived from the row (lists, tags, sub-keys) are purged as for any commit, and an entry that was
 * refilled from the database before the flush (older than the write) is purged too.
 */
const services = inject('services');

const CONFIG = `${E2E_STACK_CONFIG}flusher:
  queueRedisUrl: \${QUEUE_REDIS_URL}
  keyPrefix: '\${PREFIX}wb:'
  replicationOrigin: \${NAME}
  tables: [public.items]
  batchDelayMs: 5
  reconcileIntervalMs: 1000
  metricsIntervalMs: 500
rules:
  - table: public.items
    when: { changed: [value, list_id] }
    redis:
      keys: ['item:{id}', 'list:{list_id}']
      patterns: ['item:{id}:*']
      tags: ['list-{list_id}']
    # A truncate cannot render list-{list_id}: the tag every list also carries covers it.
    fallback:
      redis: { tags: ['lists'] }
  # An ordering barrier for the tests: an update of \`note\` alone purges only barrier:{id}, after
  # every earlier change of the same row (same Kafka partition).
  - table: public.items
    on: [update]
    when: { changed: [note] }
    redis:
      keys: ['barrier:{id}']
`;

const modes = [
  { label: 'transport: kafka, each role on its own', transport: 'kafka' },
  { label: 'transport: inline (embedded, --role all)', transport: 'inline' },
] as const;

let queueRedis: LocalRedis;
beforeAll(async () => {
  // BullMQ needs a Redis that keeps data; the flusher refuses the shared (volatile) one.
  queueRedis = await startLocalRedis({ persistent: true });
});
afterAll(async () => {
  await queueRedis?.stop();
});

describe.each(modes)('CDC echo of write-behind commits, $label', ({ transport }) => {
  const name = uniqueName(`echo_${transport}`);
  const prefix = `${name}:`;
  let db: IsolatedDatabase;
  let sql: pg.Client;
  let redis: Redis;
  let cache: CacheClient;
  let writer: WriteClient;
  let stack: WalpurgeStack | undefined;

  beforeAll(async () => {
    db = await createIsolatedDatabase(services.databaseUrl, 'e2e_echo');
    sql = new pg.Client({ connectionString: db.url });
    await sql.connect();
    await sql.query(`CREATE TABLE items (
      id int PRIMARY KEY, value text NOT NULL, list_id int NOT NULL, note text NOT NULL DEFAULT '',
      _walpurge_version bigint NOT NULL DEFAULT 0)`);
    // when.changed compares old and new values, and echoed deletes carry the old version.
    await sql.query('ALTER TABLE items REPLICA IDENTITY FULL');
    const config = parseE2eConfig(CONFIG, {
      TRANSPORT: transport,
      DATABASE_URL: db.url,
      NAME: name,
      KAFKA_BROKER: services.kafkaBrokers[0] ?? '',
      REDIS_URL: services.redisUrl,
      QUEUE_REDIS_URL: queueRedis.url,
      PREFIX: prefix,
    });
    stack = await startStack(
      config,
      transport === 'kafka' ? ['invalidator', 'listener', 'flusher'] : ['all'],
    );
    redis = new Redis(services.redisUrl);
    cache = createCacheClient({ redis, keyPrefix: prefix, earlyRefreshBeta: 0 });
    writer = createWriteClientFromConfig(config, { keys: (_table, row) => [`item:${String(row['id'])}`] });
  });

  afterAll(async () => {
    await stack?.stop();
    await writer?.close();
    await cache?.close();
    redis?.disconnect();
    await sql?.end();
    await db?.drop();
    // Replication origins are cluster-wide: do not leave this suite's behind.
    const admin = new pg.Client({ connectionString: services.databaseUrl });
    await admin.connect();
    await admin
      .query(
        'SELECT pg_replication_origin_drop(roname) FROM pg_replication_origin WHERE roname = $1 OR roname LIKE $2',
        [name, `${name}\\_%`],
      )
      .catch(() => undefined);
    await admin.end();
    if (transport === 'kafka') {
      const kafka = new Kafka({ brokers: services.kafkaBrokers, logLevel: logLevel.NOTHING }).admin();
      await kafka.connect();
      await kafka.deleteTopics({ topics: [name, `${name}_dlq`] }).catch(() => undefined);
      await kafka.disconnect();
    }
  });

  const exists = async (key: string): Promise<boolean> => (await redis.exists(prefix + key)) === 1;
  async function fill(
    key: string,
    tags: string[] = [],
    loader = async (): Promise<unknown> => key,
  ): Promise<void> {
    // get() fails open (stores nothing) when Redis is slower than its timeout on a loaded machine.
    await waitFor(`${key} cached`, async () => {
      await cache.get(key, loader, { ttl: 600, tags });
      return exists(key);
    });
  }
  async function purged(keys: string[]): Promise<void> {
    await waitFor(
      `${keys.join(', ')} purged`,
      async () => (await Promise.all(keys.map(exists))).every((present) => !present),
      { timeoutMs: 60_000, intervalMs: 20 },
    );
  }
  /** Waits until every change of row `id` committed so far has been through the invalidator. */
  async function barrier(id: number): Promise<void> {
    await fill(`barrier:${id}`);
    await sql.query("UPDATE items SET note = note || '.' WHERE id = $1", [id]);
    await purged([`barrier:${id}`]);
  }
  async function databaseValue(id: number): Promise<string | undefined> {
    const { rows } = await sql.query<{ value: string }>('SELECT value FROM items WHERE id = $1', [id]);
    return rows[0]?.value;
  }
  async function flushed(id: number, value: string): Promise<void> {
    await waitFor(`row ${id} flushed with ${value}`, async () => (await databaseValue(id)) === value, {
      timeoutMs: 60_000,
      intervalMs: 20,
    });
  }
  const cachedValue = (key: string): Promise<unknown> =>
    cache.get(key, () => Promise.reject(new Error(`${key} was purged: the read went to the database`)), {
      ttl: 600,
    });
  async function drained(): Promise<void> {
    const queue = new Redis(queueRedis.url);
    try {
      await waitFor(
        'write-behind queue drained',
        async () => (await queue.zcard(writer.layout.index)) === 0,
        {
          timeoutMs: 60_000,
          intervalMs: 20,
        },
      );
    } finally {
      queue.disconnect();
    }
  }

  it("read-your-writes: the flusher's own commit keeps the written entry; lists, tags and sub-keys are purged", async () => {
    await fill('list:1');
    await fill('list:1:page:1', ['list-1']);
    await fill('item:1:reviews');
    const written = await writer.writeBehind('items', { id: 1, value: 'v1', list_id: 1, note: '' });
    expect(written.cacheKeysWritten).toBe(1);
    await flushed(1, 'v1');
    // Derived entries go (the same event's purge, whose key step runs first).
    await purged(['list:1', 'list:1:page:1', 'item:1:reviews']);
    await barrier(1);
    expect(await cachedValue('item:1')).toEqual({ id: 1, value: 'v1', list_id: 1, note: '' });

    // The same change made by anyone else (not marked) purges the entry: the rule does apply.
    await sql.query("UPDATE items SET value = 'v1-by-sql' WHERE id = 1");
    await purged(['item:1']);
  });

  it('an entry refilled from the database before the flush (older than the write) is purged by the echo', async () => {
    await sql.query("INSERT INTO items (id, value, list_id) VALUES (2, 'old', 2)");
    await barrier(2);
    // Hold the flusher's upsert of row 2 back, so the cache can be refilled with the old row first.
    const locker = new pg.Client({ connectionString: db.url });
    await locker.connect();
    try {
      await locker.query('BEGIN');
      await locker.query('SELECT 1 FROM items WHERE id = 2 FOR UPDATE');
      await writer.writeBehind('items', { id: 2, value: 'new', list_id: 2, note: '' });
      // Eviction, then a read: cache-aside loads the row as PostgreSQL still has it.
      await redis.unlink(`${prefix}item:2`);
      await fill('item:2', [], async () => ({ id: 2, value: await databaseValue(2), list_id: 2 }));
      expect(await cachedValue('item:2')).toEqual({ id: 2, value: 'old', list_id: 2 });
      await locker.query('ROLLBACK');
    } finally {
      await locker.end();
    }
    await flushed(2, 'new');
    await purged(['item:2']);
    expect(
      await cache.get('item:2', async () => ({ id: 2, value: await databaseValue(2), list_id: 2 }), {
        ttl: 600,
      }),
    ).toEqual({ id: 2, value: 'new', list_id: 2 });
  });

  it('rapid write-behinds to one row: no echo of an older flush removes the newer cached value', async () => {
    let last = '';
    for (let i = 0; i < 40; i += 1) {
      last = `w${i}`;
      await writer.writeBehind('items', { id: 3, value: last, list_id: 3, note: '' });
    }
    await drained();
    await flushed(3, last);
    await barrier(3);
    expect(await cachedValue('item:3')).toEqual({ id: 3, value: last, list_id: 3, note: '' });
  });
});
