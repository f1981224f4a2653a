import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  createIsolatedDatabase,
  freePort,
  uniqueName,
  waitFor,
  type IsolatedDatabase,
} from '@walpurge/testing';
import { runCli } from './cli.js';
import { captureIo } from './testing/capture-io.js';
import { RecordingServer } from '../../../services/invalidator/test/recording-server.js';
import { spawnWalpurge, waitUntilReady, type WalpurgeProcess } from './testing/walpurge-process.js';

/**
 * Embedded mode (`walpurge run --role all`, transport inline) with a CDN over its API rate limit:
 * Redis purges and the slot go on while the CDN answers 429, CDN purges wait in the queue table,
 * survive kill -9, and all arrive once the CDN takes requests again.
 */
const services = inject('services');
const slot = uniqueName('cdn_lane');
const prefix = `${slot}:`;
const dir = mkdtempSync(join(tmpdir(), 'walpurge-cdn-lane-'));
const configFile = join(dir, 'walpurge.yaml');
const cdn = new RecordingServer();
let database: IsolatedDatabase;
let db: pg.Client;
let redis: Redis;
const children: WalpurgeProcess[] = [];

beforeAll(async () => {
  database = await createIsolatedDatabase(services.databaseUrl, 'cli_cdn_lane');
  db = new pg.Client({ connectionString: database.url });
  await db.connect();
  await db.query('CREATE TABLE items (id int PRIMARY KEY, v int NOT NULL)');
  redis = new Redis(services.redisUrl);
  cdn.defaultReply = () => ({ status: 200, body: '' });
  const endpoint = await cdn.start();
  writeFileSync(
    configFile,
    `transport: inline
database:
  url: \${DATABASE_URL}
  slot: ${slot}
  publication: ${slot}
  statusIntervalMs: 500
redis:
  url: \${REDIS_URL}
  keyPrefix: '${prefix}'
cdn:
  http:
    endpoint: ${endpoint}
  coalesceWindowMs: 200
log:
  level: warn
rules:
  - table: public.items
    on: [insert]
    redis:
      keys: ['item:{id}:{v}']
    cdn:
      urls: ['https://cdn.test/items/{id}/{v}']
`,
  );
});

afterAll(async () => {
  for (const child of children) if (child.child.exitCode === null) await child.killNow();
  await db?.end().catch(() => {});
  const keys = await redis?.keys(`${prefix}*`).catch(() => [] as string[]);
  if (keys && keys.length > 0) await redis.unlink(...keys);
  redis?.disconnect();
  await cdn.stop();
  await database?.drop();
  rmSync(dir, { recursive: true, force: true });
});

const env = (): Record<string, string> => ({ DATABASE_URL: database.url, REDIS_URL: services.redisUrl });

async function confirmedLsn(): Promise<string | null> {
  const { rows } = await db.query<{ lsn: string | null }>(
    'SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1',
    [slot],
  );
  return rows[0]?.lsn ?? null;
}

async function queued(): Promise<number> {
  const { rows } = await db.query<{ n: string }>('SELECT count(*) AS n FROM walpurge_cdn_queue');
  return Number(rows[0]?.n);
}

describe('the CDN lane in embedded mode', () => {
  it('CDN answering 429: Redis purged and the slot advances; kill -9 loses no queued CDN purge', async () => {
    const port = await freePort();
    const first = spawnWalpurge(
      ['run', '--config', configFile, '--role', 'all', '--http-port', String(port)],
      env(),
    );
    children.push(first);
    await waitUntilReady(port, first);
    const startLsn = await confirmedLsn();

    cdn.throttle(120_000, 1);
    const rows = Array.from({ length: 20 }, (_, id) => id);
    for (const id of rows) {
      await redis.set(`${prefix}item:${id}:1`, 'stale');
      await db.query('INSERT INTO items (id, v) VALUES ($1, 1)', [id]);
    }
    const keys = rows.map((id) => `${prefix}item:${id}:1`);
    await waitFor('Redis purged while the CDN throttles', async () => (await redis.exists(...keys)) === 0, {
      timeoutMs: 30_000,
    }).catch((error: unknown) => {
      throw new Error(`${String(error)}\n${first.output()}`);
    });
    await waitFor('the slot to advance past the inserts', async () => (await confirmedLsn()) !== startLsn, {
      timeoutMs: 15_000,
    });
    await waitFor('the lane to meet the 429', async () => cdn.requests.length > 0, { timeoutMs: 15_000 });
    expect(cdn.succeeded).toHaveLength(0);
    expect(await queued()).toBe(rows.length);
    // `walpurge status` shows the backlog per provider.
    const json = captureIo({ ...env(), WALPURGE_CONFIG: configFile });
    expect(await runCli(['status', '--json'], json), json.err()).toBe(0);
    const { cdnQueue } = JSON.parse(json.out()) as {
      cdnQueue: {
        exists: boolean;
        providers: Array<{ provider: string; pending: number; oldestAgeMs: number }>;
      };
    };
    expect(cdnQueue.exists).toBe(true);
    expect(cdnQueue.providers).toEqual([
      { provider: 'http', pending: rows.length, oldestAgeMs: expect.any(Number) },
    ]);
    const text = captureIo({ ...env(), WALPURGE_CONFIG: configFile });
    expect(await runCli(['status'], text), text.err()).toBe(0);
    expect(text.out()).toMatch(new RegExp(`^CDN queue\\s+http: ${rows.length} pending, oldest .+ old$`, 'm'));

    await first.killNow();
    const secondPort = await freePort();
    const second = spawnWalpurge(
      ['run', '--config', configFile, '--role', 'all', '--http-port', String(secondPort)],
      env(),
    );
    children.push(second);
    // Still throttled: ready all the same (a CDN never takes the pod out).
    await waitUntilReady(secondPort, second);
    const before = cdn.requests.length;
    await waitFor('the restarted lane to retry', async () => cdn.requests.length > before, {
      timeoutMs: 15_000,
    });
    expect(cdn.succeeded).toHaveLength(0);

    cdn.unthrottle();
    await waitFor('the queue to drain', async () => (await queued()) === 0, { timeoutMs: 30_000 }).catch(
      (error: unknown) => {
        throw new Error(`${String(error)}\n${second.output()}`);
      },
    );
    const purged = new Set(cdn.succeeded.map((request) => request.path));
    expect([...purged].sort()).toEqual(rows.map((id) => `/items/${id}/1`).sort());
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
  });
});
