import { readFileSync, rmSync, writeFileSync, mkdtempSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createIsolatedDatabase, uniqueName, waitFor } from '@walpurge/testing';
import { exampleConfigPath } from './quickstart/demo-files.js';
import { spawnWalpurge, type WalpurgeProcess } from './testing/walpurge-process.js';

/** `walpurge quickstart` (what `npm start` runs) as a user runs it: a real process, its terminal output. */
const children: WalpurgeProcess[] = [];
afterAll(async () => {
  for (const child of children) if (child.child.exitCode === null) await child.killNow();
});

function refusesConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

const INVALIDATION = /^\+\s*\d+\.\ds {2}UPDATE public\.\w+ id=\d+\s+commit→purge\s+\d+ ms {2}.+$/gm;
const TOTALS =
  /^totals: (\d+) changes, (\d+) invalidated, (\d+) cache entries purged; commit→purge p50 \d+ ms, p95 \d+ ms, max \d+ ms$/m;

function checkDemoOutput(stdout: string): void {
  const invalidations = stdout.match(INVALIDATION) ?? [];
  expect(invalidations.length, stdout).toBeGreaterThanOrEqual(5);
  // Each line checks Redis after the purge: the entries cached before the write are gone.
  expect(stdout).toMatch(/\[demo:product:\d+ gone, demo:product_by_sku:[\w-]+ gone/);
  expect(stdout).not.toContain('STILL CACHED');
  // The when.changed filter is visible too: bio edits purge nothing.
  expect(stdout).toContain('no purge: user: update changed none of when.changed: [email, name]');
  const totals = TOTALS.exec(stdout);
  expect(totals, stdout).not.toBeNull();
  const [, changes, invalidated, entries] = (totals ?? []).map(Number);
  expect(invalidated).toBeGreaterThanOrEqual(invalidations.length);
  expect(changes).toBeGreaterThan(invalidated ?? 0);
  expect(entries).toBeGreaterThan(invalidated ?? 0);
  expect(stdout.endsWith('\ncleaning up…\ndone.\n')).toBe(true);
}

describe('walpurge quickstart', () => {
  it('on a machine with nothing configured: starts PostgreSQL and Redis, shows invalidations, cleans up', async () => {
    const quickstart = spawnWalpurge(['quickstart', '--duration', '2', '--interval', '0.1'], {});
    children.push(quickstart);
    expect(await quickstart.exited, quickstart.output()).toBe(0);
    const stdout = quickstart.stdout();
    const postgres =
      /^ {2}started PostgreSQL on 127\.0\.0\.1:(\d+) \(wal_level=logical, data in a temp dir\)$/m.exec(
        stdout,
      );
    const redis = /^ {2}started Redis on 127\.0\.0\.1:(\d+)$/m.exec(stdout);
    expect(postgres, stdout).not.toBeNull();
    expect(redis, stdout).not.toBeNull();
    expect(stdout).toContain('walpurge running in embedded mode (transport: inline)');
    expect(stdout).toContain('Updating demo rows for 2 s; each line is one invalidation:');
    checkDemoOutput(stdout);
    // What it started is gone.
    expect(await refusesConnections(Number(postgres?.[1]))).toBe(true);
    expect(await refusesConnections(Number(redis?.[1]))).toBe(true);
  });

  it('with DATABASE_URL / REDIS_URL and --config: uses them, stops on Ctrl-C, drops the slot it created', async () => {
    const services = inject('services');
    const database = await createIsolatedDatabase(services.databaseUrl, 'cli_quickstart');
    const dir = mkdtempSync(join(tmpdir(), 'walpurge-quickstart-'));
    const slot = uniqueName('quickstart');
    const redis = new Redis(services.redisUrl);
    try {
      // The example rules, with a slot and key prefix of their own on the shared servers.
      const config = join(dir, 'walpurge.yaml');
      const example = readFileSync(exampleConfigPath, 'utf8');
      const own = example
        .replace('slot: walpurge_demo', `slot: ${slot}`)
        .replace('publication: walpurge_demo', `publication: ${slot}`)
        .replace('  url: ${REDIS_URL}\n', `  url: \${REDIS_URL}\n  keyPrefix: '${slot}:'\n`);
      expect(own).toContain(`keyPrefix: '${slot}:'`);
      writeFileSync(config, own);

      const quickstart = spawnWalpurge(['quickstart', '--config', config, '--interval', '0.1'], {
        DATABASE_URL: database.url,
        REDIS_URL: services.redisUrl,
      });
      children.push(quickstart);
      await waitFor(
        'a few invalidations',
        async () => (quickstart.stdout().match(INVALIDATION) ?? []).length >= 6,
        {
          timeoutMs: 30_000,
        },
      );
      quickstart.child.kill('SIGINT');
      expect(await quickstart.exited, quickstart.output()).toBe(0);
      const stdout = quickstart.stdout();
      expect(stdout).not.toContain('started PostgreSQL');
      expect(stdout).toContain('  using DATABASE_URL (127.0.0.1:');
      expect(stdout).toContain('Updating demo rows; each line is one invalidation (Ctrl-C to stop):');
      checkDemoOutput(stdout);

      const db = new pg.Client({ connectionString: database.url });
      await db.connect();
      try {
        const slots = await db.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [slot]);
        expect(slots.rowCount).toBe(0);
        // Its slot history went with it: a second demo run may start a fresh slot.
        const history = await db.query('SELECT 1 FROM walpurge_slot_history WHERE slot_name = $1', [slot]);
        expect(history.rowCount).toBe(0);
        const products = await db.query('SELECT count(*)::int AS n FROM products');
        expect(products.rows[0]).toEqual({ n: 6 });
      } finally {
        await db.end();
      }
      // The demo's keys lived under the configured prefix, and the purges left none of the product ones.
      expect(await redis.exists(`${slot}:demo:product:1`)).toBe(0);
    } finally {
      const keys = await redis.keys(`${slot}:*`);
      if (keys.length > 0) await redis.unlink(...keys);
      redis.disconnect();
      await database.drop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
