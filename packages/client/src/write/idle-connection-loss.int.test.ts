import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { WalpurgeConfig } from '@walpurge/config';
import {
  createIsolatedDatabase,
  startLocalRedis,
  uniqueName,
  waitFor,
  withPgClient,
  type IsolatedDatabase,
  type LocalRedis,
} from '@walpurge/testing';
import { createWriteClientFromConfig } from './write-client.js';

/**
 * A write client built from walpurge.yaml owns its PostgreSQL pool. When the server drops an idle
 * connection of that pool (a restart, a failover, an operator's pg_terminate_backend), the pool
 * emits 'error' with no query in flight: without a listener that is an uncaught exception, and
 * the application dies (the chaos soak's PostgreSQL restart found it). The next write must simply
 * run on a fresh connection.
 */
const services = inject('services');
const appName = uniqueName('wb_idle');
let db: IsolatedDatabase;
let queueRedis: LocalRedis;

beforeAll(async () => {
  [db, queueRedis] = await Promise.all([
    createIsolatedDatabase(services.databaseUrl, 'wb_idle'),
    startLocalRedis({ persistent: true }),
  ]);
  await withPgClient(db.url, (client) =>
    client.query(`CREATE TABLE items (id int PRIMARY KEY, value text NOT NULL,
                  _walpurge_version bigint NOT NULL DEFAULT 0)`),
  );
});
afterAll(async () => {
  await Promise.all([queueRedis?.stop(), db?.drop()]);
});

describe('createWriteClientFromConfig, an idle database connection dropped by the server', () => {
  it('does not end the process; the next write runs on a new connection', async () => {
    const url = new URL(db.url);
    url.searchParams.set('application_name', appName);
    const prefix = `${appName}:`;
    const config = WalpurgeConfig.parse({
      database: { url: url.toString() },
      redis: { url: services.redisUrl, keyPrefix: prefix },
      flusher: { queueRedisUrl: queueRedis.url, keyPrefix: `${prefix}wb:` },
      rules: [],
    });
    const writes = createWriteClientFromConfig(config, {
      keys: (_table, row) => [`item:${String(row['id'])}`],
    });
    try {
      await writes.writeThrough('items', { id: 1, value: 'before' });
      const terminated = await withPgClient(services.databaseUrl, async (client) => {
        const { rows } = await client.query<{ done: boolean }>(
          'SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity WHERE application_name = $1',
          [appName],
        );
        return rows.filter((row) => row.done).length;
      });
      expect(terminated).toBeGreaterThan(0);
      // The pool learns of the loss asynchronously (the socket's end), as an 'error' event.
      await waitFor('the dropped connection gone from pg_stat_activity', () =>
        withPgClient(services.databaseUrl, async (client) => {
          const { rowCount } = await client.query(
            'SELECT 1 FROM pg_stat_activity WHERE application_name = $1',
            [appName],
          );
          return rowCount === 0;
        }),
      );
      const after = await writes.writeThrough('items', { id: 1, value: 'after' });
      expect(after.applied).toBe(true);
      const row = await withPgClient(db.url, (client) =>
        client.query('SELECT value FROM items WHERE id = 1'),
      );
      expect(row.rows).toEqual([{ value: 'after' }]);
    } finally {
      await writes.close();
    }
  });
});
