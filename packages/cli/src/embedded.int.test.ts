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
import { readyz, spawnWalpurge, waitUntilReady, type WalpurgeProcess } from './testing/walpurge-process.js';
import type { SlotStatus } from './status/slot-status.js';

/**
 * Embedded mode as users run it: `walpurge run --role all` with transport inline, a real process,
 * killed with SIGKILL while changes stream in, restarted, and checked for a single missed purge.
 * The status and slot commands are exercised on the same slot along the way.
 */
const services = inject('services');
const slot = uniqueName('embedded');
const prefix = `${slot}:`;
const dir = mkdtempSync(join(tmpdir(), 'walpurge-embedded-'));
const configFile = join(dir, 'walpurge.yaml');
let database: IsolatedDatabase;
let db: pg.Client;
let redis: Redis;
const children: WalpurgeProcess[] = [];

beforeAll(async () => {
  database = await createIsolatedDatabase(services.databaseUrl, 'cli_embedded');
  db = new pg.Client({ connectionString: database.url });
  await db.connect();
  await db.query(
    'CREATE TABLE items (id int PRIMARY KEY, sku text NOT NULL); ALTER TABLE items REPLICA IDENTITY FULL',
  );
  redis = new Redis(services.redisUrl);
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
log:
  level: warn
rules:
  - table: public.items
    redis:
      keys: ['item:{id}', 'sku:{old.sku}', 'sku:{new.sku}']
`,
  );
});

afterAll(async () => {
  for (const child of children) if (child.child.exitCode === null) await child.killNow();
  await db?.end().catch(() => {});
  const keys = await redis?.keys(`${prefix}*`).catch(() => [] as string[]);
  if (keys && keys.length > 0) await redis.unlink(...keys);
  redis?.disconnect();
  await database?.drop();
  rmSync(dir, { recursive: true, force: true });
});

const env = (): Record<string, string> => ({ DATABASE_URL: database.url, REDIS_URL: services.redisUrl });

async function status(): Promise<SlotStatus & { text: string }> {
  const json = captureIo({ ...env(), WALPURGE_CONFIG: configFile });
  expect(await runCli(['status', '--json'], json), json.err()).toBe(0);
  const table = captureIo({ ...env(), WALPURGE_CONFIG: configFile });
  expect(await runCli(['status'], table), table.err()).toBe(0);
  return { ...(JSON.parse(json.out()) as { slot: SlotStatus }).slot, text: table.out() };
}

/**
 * An application: before each commit it caches the entries the commit makes stale (as a reader
 * racing the write would), so after the pipeline caught up not one of them may still be there.
 */
class Writer {
  committed = 0;
  readonly staleKeys = new Set<string>();
  private stopped = false;
  private loop: Promise<void> | undefined;

  private async commit(): Promise<void> {
    const id = this.committed + 1;
    if (id % 4 === 0) {
      // An update of a key column: both the old and the new sku's entries must go.
      const target = id - 1;
      const keys = [`item:${target}`, `sku:s-${target}`, `sku:u-${target}`];
      await this.cache(keys);
      await db.query('UPDATE items SET sku = $2 WHERE id = $1', [target, `u-${target}`]);
    }
    const keys = [`item:${id}`, `sku:s-${id}`];
    await this.cache(keys);
    await db.query('INSERT INTO items (id, sku) VALUES ($1, $2)', [id, `s-${id}`]);
    this.committed = id;
  }

  private async cache(keys: string[]): Promise<void> {
    for (const key of keys) this.staleKeys.add(key);
    await redis.mset(...keys.flatMap((key) => [`${prefix}${key}`, 'stale']));
  }

  start(): void {
    this.loop = (async () => {
      while (!this.stopped) await this.commit();
    })();
  }

  async writeUntil(count: number): Promise<void> {
    await waitFor(`${count} commits`, async () => this.committed >= count, {
      timeoutMs: 20_000,
      intervalMs: 5,
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }

  async stillCached(): Promise<string[]> {
    const keys = [...this.staleKeys];
    const exists = await Promise.all(keys.map((key) => redis.exists(`${prefix}${key}`)));
    return keys.filter((_, i) => exists[i] === 1);
  }
}

describe('walpurge run --role all (embedded mode)', () => {
  it('kill -9 while changes stream in, restart: every committed change is purged', async () => {
    const port = await freePort();
    const first = spawnWalpurge(
      ['run', '--config', configFile, '--role', 'all', '--http-port', String(port)],
      env(),
    );
    children.push(first);
    const ready = await waitUntilReady(port, first);
    expect(ready.body).toEqual({ status: 'ok', checks: { invalidator: 'ok', listener: 'ok' } });
    const running = await status();
    expect(running.active).toBe(true);
    expect(running.text).toMatch(new RegExp(`^replication slot\\s+${slot}: active \\(pid \\d+\\)`, 'm'));

    const writer = new Writer();
    writer.start();
    await writer.writeUntil(30);
    await first.killNow();
    expect(await first.exited).toBe('SIGKILL');
    const killedAt = writer.committed;
    await writer.writeUntil(killedAt + 30);

    // Nobody purges while walpurge is dead: the last commit's entries are still cached, and the
    // slot holds every change since its confirmed LSN.
    expect(await redis.exists(`${prefix}item:${writer.committed}`)).toBe(1);
    const dead = await waitFor('the slot to be released', async () => {
      const slotStatus = await status();
      return slotStatus.active === false ? slotStatus : undefined;
    });
    expect(dead.lagBytes).toBeGreaterThan(0);
    expect(dead.text).toMatch(
      new RegExp(`^replication slot\\s+${slot}: inactive: no walpurge is reading it`, 'm'),
    );
    expect(dead.text).toMatch(/^WAL retained\s+\d+(\.\d)? (B|KiB|MiB)$/m);
    expect(dead.text).toMatch(/^replication lag\s+\d+(\.\d)? (B|KiB|MiB) not yet acknowledged$/m);

    // The restart is configured through the environment only (WALPURGE_CONFIG, _ROLE, _HTTP_PORT).
    const secondPort = await freePort();
    const second = spawnWalpurge(['run'], {
      ...env(),
      WALPURGE_CONFIG: configFile,
      WALPURGE_ROLE: 'all',
      WALPURGE_HTTP_PORT: String(secondPort),
    });
    children.push(second);
    await waitUntilReady(secondPort, second);
    await writer.writeUntil(writer.committed + 20);
    await writer.stop();

    const missed = await waitFor(
      'every stale entry to be purged',
      async () => {
        const left = await writer.stillCached();
        return left.length === 0 ? left : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    ).catch(async (error: unknown) => {
      throw new Error(
        `${String(error)}\nstill cached: ${(await writer.stillCached()).slice(0, 10).join(', ')}\n${second.output()}`,
      );
    });
    expect(missed).toEqual([]);
    expect(writer.committed).toBeGreaterThanOrEqual(80);

    // The restarted process acknowledged past what the killed one had confirmed.
    const after = await waitFor('the slot to advance', async () => {
      const slotStatus = await status();
      return slotStatus.confirmedLsn !== dead.confirmedLsn ? slotStatus : undefined;
    });
    expect(after.active).toBe(true);

    // A second embedded instance on the same slot is alive but not ready: its listener waits as a
    // standby while the first one streams, and takes over when that one stops.
    const standbyPort = await freePort();
    const standbyStop = new AbortController();
    const standbyIo = captureIo(
      { ...env(), WALPURGE_CONFIG: configFile, LOG_LEVEL: 'silent' },
      { signal: standbyStop.signal },
    );
    const standbyExit = runCli(['run', '--http-port', String(standbyPort)], standbyIo);
    try {
      const started = await waitFor('the standby to have started', async () => {
        const answer = await readyz(standbyPort);
        return answer.body.checks['invalidator'] === 'ok' ? answer : undefined;
      });
      expect(started).toEqual({
        status: 503,
        body: {
          status: 'unavailable',
          // The listener says why: it waits for the slot (or has not tried yet).
          checks: {
            invalidator: 'ok',
            listener: expect.stringMatching(
              /^(standing by: replication slot "\w+" is in use by another reader|connecting to PostgreSQL)$/,
            ) as unknown,
          },
        },
      });

      // SIGTERM drains and exits 0; the standby takes the slot over.
      second.child.kill('SIGTERM');
      expect(await second.exited).toBe(0);
      expect(second.output()).not.toMatch(/"level":(50|60)/);
      await waitUntilReady(standbyPort);
      await redis.set(`${prefix}item:1`, 'stale');
      await db.query("UPDATE items SET sku = 'after-takeover' WHERE id = 1");
      await waitFor(
        'a purge by the new active instance',
        async () => (await redis.exists(`${prefix}item:1`)) === 0,
      );

      // slot drop refuses a slot in use.
      const busy = captureIo({ ...env(), WALPURGE_CONFIG: configFile });
      expect(await runCli(['slot', 'drop', '--yes'], busy)).toBe(1);
      expect(busy.err()).toMatch(
        new RegExp(
          `^error WP_SLOT_BUSY: slot '${slot}' is in use by backend pid \\d+\\nhint: stop walpurge \\(the listener\\) first\\n$`,
        ),
      );
    } finally {
      standbyStop.abort();
      expect(await standbyExit, standbyIo.err()).toBe(0);
    }
  });

  it('slot drop asks for the slot name, refuses without a terminal, and drops with --yes', async () => {
    const base = { ...env(), WALPURGE_CONFIG: configFile };
    const noTerminal = captureIo(base);
    expect(await runCli(['slot', 'drop'], noTerminal)).toBe(2);
    expect(noTerminal.err()).toBe(
      "walpurge slot drop: refusing to drop a slot without confirmation: pass --yes (no terminal to ask on)\nRun 'walpurge slot drop --help' for usage.\n",
    );

    const questions: string[] = [];
    const wrong = captureIo(base, {
      prompt: (question) => {
        questions.push(question);
        return Promise.resolve('yes');
      },
    });
    expect(await runCli(['slot', 'drop'], wrong)).toBe(1);
    expect(wrong.err()).toBe('not confirmed; nothing dropped\n');
    expect(questions).toEqual([
      `Drop replication slot '${slot}' on 127.0.0.1:${new URL(database.url).port}/${database.name}? Type its name to confirm: `,
    ]);
    expect((await status()).exists).toBe(true);

    const typed = captureIo(base, { prompt: () => Promise.resolve(`${slot}\n`) });
    expect(await runCli(['slot', 'drop'], typed)).toBe(0);
    expect(typed.out()).toBe(`dropped replication slot '${slot}'\n`);
    const gone = await status();
    expect(gone.exists).toBe(false);
    expect(gone.text).toMatch(
      new RegExp(`^replication slot\\s+${slot}: does not exist \\(created when walpurge starts\\)$`, 'm'),
    );

    const again = captureIo(base);
    expect(await runCli(['slot', 'drop', '--yes'], again)).toBe(1);
    expect(again.err()).toBe(`slot '${slot}' does not exist; nothing dropped\n`);
  });
});
