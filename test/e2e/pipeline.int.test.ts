import { Kafka, logLevel } from 'kafkajs';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createCacheClient, type CacheClient } from '@walpurge/client';
import { createIsolatedDatabase, uniqueName, waitFor, type IsolatedDatabase } from '@walpurge/testing';
import {
  E2E_STACK_CONFIG,
  parseE2eConfig,
  scrapeMetric,
  startStack,
  type WalpurgeStack,
} from './support/walpurge-stack.js';

/**
 * End to end, nothing mocked: SQL commit → PostgreSQL WAL → listener (pgoutput) → [Kafka] →
 * invalidator (rules) → Redis UNLINK / SCAN / tag sets, with entries cached by @walpurge/client.
 * The services are started by the CLI's composition root from a walpurge.yaml, once with
 * transport: kafka (listener and invalidator as separate roles, as deployed at scale) and once
 * embedded (transport: inline, --role all).
 */
const services = inject('services');

const CONFIG = `${E2E_STACK_CONFIG}rules:
  - table: public.users
    redis:
      keys: ['user:{id}', 'user_by_email:{email}']
      patterns: ['user:{id}:*', 'search:{name}:*']
      tags: ['team-{team_id}']
    # A truncate cannot render team-{team_id}: the tag every team list also carries covers it.
    fallback:
      redis: { tags: ['teams'] }
  - table: public.users
    on: [insert, delete]
    redis:
      keys: ['users:count']
`;

const modes = [
  { label: 'transport: kafka, listener and invalidator as separate roles', transport: 'kafka' },
  { label: 'transport: inline (embedded, --role all)', transport: 'inline' },
] as const;

describe.each(modes)('SQL commit → Redis purge, $label', ({ transport }) => {
  const name = uniqueName(`e2e_${transport}`);
  const prefix = `${name}:`;
  let db: IsolatedDatabase;
  let sql: pg.Client;
  let redis: Redis;
  let cache: CacheClient;
  let stack: WalpurgeStack | undefined;

  beforeAll(async () => {
    db = await createIsolatedDatabase(services.databaseUrl, 'e2e_pipeline');
    sql = new pg.Client({ connectionString: db.url });
    await sql.connect();
    await sql.query(`CREATE TABLE users (
      id int PRIMARY KEY, email text NOT NULL, name text NOT NULL, team_id int NOT NULL)`);
    // Updates that change the email must purge the old email's entry too: needs the old row.
    await sql.query('ALTER TABLE users REPLICA IDENTITY FULL');
    const config = parseE2eConfig(CONFIG, {
      TRANSPORT: transport,
      DATABASE_URL: db.url,
      NAME: name,
      KAFKA_BROKER: services.kafkaBrokers[0] ?? '',
      REDIS_URL: services.redisUrl,
      PREFIX: prefix,
    });
    stack = await startStack(config, transport === 'kafka' ? ['invalidator', 'listener'] : ['all']);
    redis = new Redis(services.redisUrl);
    cache = createCacheClient({ redis, keyPrefix: prefix, earlyRefreshBeta: 0 });
  });

  afterAll(async () => {
    await stack?.stop();
    await cache?.close();
    redis?.disconnect();
    await sql?.end();
    await db?.drop();
    if (transport === 'kafka') {
      const admin = new Kafka({ brokers: services.kafkaBrokers, logLevel: logLevel.NOTHING }).admin();
      await admin.connect();
      await admin.deleteTopics({ topics: [name, `${name}_dlq`] }).catch(() => undefined);
      await admin.disconnect();
    }
  });

  /** Caches `key` through the SDK (so tag sets use the SDK's layout) and checks it is there. */
  async function fill(key: string, tags: string[] = []): Promise<void> {
    // get() fails open to the loader (nothing stored) when Redis is slower than its timeout, as
    // it can be on a loaded machine: retry until the entry is really there.
    await waitFor(`${key} cached`, async () => {
      await cache.get(key, async () => ({ key, at: Date.now() }), { ttl: 600, tags });
      return (await redis.exists(prefix + key)) === 1;
    });
  }
  const exists = async (key: string): Promise<boolean> => (await redis.exists(prefix + key)) === 1;
  async function purged(keys: string[]): Promise<void> {
    await waitFor(
      `${keys.join(', ')} purged`,
      async () => (await Promise.all(keys.map(exists))).every((present) => !present),
      { timeoutMs: 60_000, intervalMs: 20 },
    );
  }

  it('an INSERT purges the new row entries, its sub-keys, its tagged entries and the count', async () => {
    await fill('user:1');
    await fill('user_by_email:ann@example.com');
    await fill('users:count');
    await fill('user:1:profile');
    await fill('team:7:members', ['team-7']);
    await fill('user:2');
    await sql.query(`INSERT INTO users VALUES (1, 'ann@example.com', 'ann', 7)`);
    await purged(['user:1', 'user_by_email:ann@example.com', 'users:count', 'user:1:profile']);
    await purged(['team:7:members']);
    expect(await exists('user:2')).toBe(true);
    expect(await redis.scard(`${prefix}tag:team-7`)).toBe(0);
  });

  it('an UPDATE purges old and new derived entries, sub-keys and tagged entries; neighbours survive', async () => {
    // The inserts' own purges must be over before the entries below are cached: a marker per row,
    // cached before its insert, is purged by the insert's pattern (the last step of its purge).
    await fill('user:2:marker');
    await fill('user:10:marker');
    await sql.query(
      `INSERT INTO users VALUES (2, 'bob@example.com', 'b*', 8), (10, 'cy@example.com', 'bo', 8)`,
    );
    await purged(['user:2:marker', 'user:10:marker']);

    // Entries whose purge must happen, and neighbours that must survive (a `user:2:*` pattern must
    // not reach `user:20:…`; the row value `b*` must not widen `search:b*:*` to `search:bo:…`).
    const doomed = [
      'user:2',
      'user_by_email:bob@example.com',
      'user_by_email:bobby@example.com',
      'user:2:profile',
      'user:2:friends:page:1',
      'search:b*:1',
    ];
    const survivors = ['user:10', 'user:20:profile', 'user:20', 'search:bo:1', 'users:count:other'];
    for (const key of [...doomed, ...survivors]) await fill(key);
    await fill('team:8:members', ['team-8']);
    await fill('team:9:members', ['team-9']);

    await sql.query(`UPDATE users SET email = 'bobby@example.com' WHERE id = 2`);
    await purged([...doomed, 'team:8:members']);
    for (const key of survivors) expect(await exists(key), `${key} survives`).toBe(true);
    expect(await exists('team:9:members')).toBe(true);
  });

  it('every commit of a burst reaches the invalidator: 200 transactions over 20 rows', async () => {
    const ids = Array.from({ length: 20 }, (_, i) => 100 + i);
    for (const id of ids) await fill(`user:${id}:marker`);
    await sql.query(
      `INSERT INTO users SELECT g, 'u' || g || '@example.com', 'n' || g, 1 FROM unnest($1::int[]) g`,
      [ids],
    );
    await purged(ids.map((id) => `user:${id}:marker`));
    for (const id of ids) await fill(`user:${id}`);
    const updatesBefore = await scrapeMetric(stack!, 'walpurge_invalidator_events_total', { op: 'u' });

    for (let round = 0; round < 10; round += 1) {
      for (const id of ids) await sql.query('UPDATE users SET name = $2 WHERE id = $1', [id, `r${round}`]);
    }
    // At-least-once: every update event reaches the invalidator (replays may count twice), and no
    // event is dead-lettered on the way.
    await waitFor(
      'all 200 updates seen by the invalidator (at least once)',
      async () =>
        (await scrapeMetric(stack!, 'walpurge_invalidator_events_total', { op: 'u' })) - updatesBefore >= 200,
      { timeoutMs: 60_000, intervalMs: 50 },
    );
    await purged(ids.map((id) => `user:${id}`));
    expect(await scrapeMetric(stack!, 'walpurge_invalidator_dead_letters_total')).toBe(0);
  });

  it('DELETE purges the old row entries; TRUNCATE purges every row entry of the table only', async () => {
    const deleted = ['user:1', 'user_by_email:ann@example.com', 'users:count', 'user:1:profile'];
    for (const key of deleted) await fill(key);
    await fill('user:2:profile');
    await sql.query('DELETE FROM users WHERE id = 1');
    await purged(deleted);
    expect(await exists('user:2:profile')).toBe(true);

    for (const key of ['user:2', 'user:55:profile', 'user_by_email:x@example.com', 'users:count', 'other:1'])
      await fill(key);
    await sql.query('TRUNCATE users');
    // `user:{id}` widens to `user:*` (and so on); the `team-{team_id}` tag cannot be rendered for a
    // truncate: it is reported and the fallback tag `teams` purged. `users:count` is `on: [insert, delete]`.
    await purged(['user:2', 'user:55:profile', 'user:2:profile', 'user_by_email:x@example.com']);
    expect(await exists('other:1')).toBe(true);
    expect(await exists('users:count')).toBe(true);
  });
});
