import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { Kafka, logLevel } from 'kafkajs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createWriteClient, type WriteClient } from '@walpurge/client/write';
import {
  createIsolatedDatabase,
  freePort,
  startLocalRedis,
  uniqueName,
  waitFor,
  type IsolatedDatabase,
  type LocalRedis,
} from '@walpurge/testing';
import { runCli } from './cli.js';
import { captureIo } from './testing/capture-io.js';
import { readyz, waitUntilReady } from './testing/walpurge-process.js';

/**
 * The roles split through Kafka (`walpurge run --role listener|invalidator|flusher`), each with its
 * own /readyz, and the operator commands against them: status, dlq list|redrive for poison events
 * and for failed write-behind rows.
 */
const services = inject('services');
const name = uniqueName('cli_ops');
const dir = mkdtempSync(join(tmpdir(), 'walpurge-ops-'));
const configFile = join(dir, 'walpurge.yaml');
let database: IsolatedDatabase;
let db: pg.Client;
let cache: Redis;
let queueRedis: LocalRedis;
const running: Array<{ stop(): Promise<number> }> = [];

beforeAll(async () => {
  [database, queueRedis] = await Promise.all([
    createIsolatedDatabase(services.databaseUrl, 'cli_ops'),
    startLocalRedis({ persistent: true }),
  ]);
  db = new pg.Client({ connectionString: database.url });
  await db.connect();
  await db.query(`CREATE TABLE items (id int PRIMARY KEY, value text NOT NULL, n int CHECK (n >= 0),
                                      _walpurge_version bigint NOT NULL DEFAULT 0);
                  ALTER TABLE items REPLICA IDENTITY FULL`);
  cache = new Redis(services.redisUrl);
  writeFileSync(
    configFile,
    `transport: kafka
database:
  url: \${DATABASE_URL}
  slot: ${name}
  publication: ${name}
kafka:
  brokers: ['\${KAFKA_BROKERS}']
  topic: ${name}.changes
  deadLetterTopic: ${name}.dlq
  consumerGroup: ${name}
  partitions: 2
redis:
  url: \${REDIS_URL}
  keyPrefix: '${name}:'
flusher:
  queueRedisUrl: \${QUEUE_REDIS_URL}
  keyPrefix: '${name}:wb:'
  batchDelayMs: 5
  metricsIntervalMs: 200
invalidator:
  retryMaxMs: 200
log:
  level: fatal
rules:
  - table: public.items
    redis:
      keys: ['item:{id}']
`,
  );
});

afterAll(async () => {
  for (const service of running.reverse()) await service.stop().catch(() => {});
  await db?.end().catch(() => {});
  const keys = await cache?.keys(`${name}:*`).catch(() => [] as string[]);
  if (keys && keys.length > 0) await cache.unlink(...keys);
  cache?.disconnect();
  await queueRedis?.stop();
  await database?.drop();
  rmSync(dir, { recursive: true, force: true });
});

function env(): Record<string, string> {
  return {
    DATABASE_URL: database.url,
    REDIS_URL: services.redisUrl,
    KAFKA_BROKERS: services.kafkaBrokers[0] ?? '',
    QUEUE_REDIS_URL: queueRedis.url,
    WALPURGE_CONFIG: configFile,
  };
}

/** `walpurge run --role ROLE` in this process; stop() is what SIGTERM does. */
async function startRole(
  role: string,
  unset: readonly string[] = [],
): Promise<{ port: number; stop(): Promise<number>; err(): string }> {
  const port = await freePort();
  const controller = new AbortController();
  const environment: Record<string, string | undefined> = env();
  for (const name of unset) delete environment[name];
  const io = captureIo(environment, { signal: controller.signal });
  const exit = runCli(['run', '--role', role, '--http-port', String(port)], io);
  const handle = {
    port,
    err: () => io.err(),
    stop: async () => {
      controller.abort();
      return exit;
    },
  };
  running.push(handle);
  // A start that fails returns at once: fail with what it said instead of waiting for /readyz.
  await Promise.race([
    waitUntilReady(port),
    exit.then((code) => {
      throw new Error(`walpurge run --role ${role} exited with ${code}: ${io.err()}`);
    }),
  ]);
  return handle;
}

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const io = captureIo(env());
  const code = await runCli(argv, io);
  return { code, out: io.out(), err: io.err() };
}

interface StatusJson {
  transport: string;
  slot: { exists: boolean; active: boolean };
  kafka: { consumerLag: number | null; partitions: unknown[]; deadLetters: number; deadLetterTopic: string };
  writeBehind: { pending: number; failed: number; oldestPendingAgeMs: number | null };
}

async function statusJson(): Promise<StatusJson> {
  const result = await cli('status', '--json');
  expect(result.code, result.err).toBe(0);
  return JSON.parse(result.out) as StatusJson;
}

describe('roles through Kafka, with the operator commands', () => {
  let writes: WriteClient;
  let queue: Redis;

  it('listener and invalidator roles: ready only when streaming / joined, and purging end to end', async () => {
    const invalidator = await startRole('invalidator');
    expect((await readyz(invalidator.port)).body).toEqual({ status: 'ok', checks: { invalidator: 'ok' } });
    // A listener pod has no Redis URLs: the sections it never reads are left out, not refused.
    const listener = await startRole('listener', ['REDIS_URL', 'QUEUE_REDIS_URL']);
    expect((await readyz(listener.port)).body).toEqual({ status: 'ok', checks: { listener: 'ok' } });

    // A second listener on the same slot waits as a standby: alive, but not ready.
    const standbyPort = await freePort();
    const controller = new AbortController();
    const standbyIo = captureIo(env(), { signal: controller.signal });
    const standbyExit = runCli(['run', '--role', 'listener', '--http-port', String(standbyPort)], standbyIo);
    running.push({ stop: () => (controller.abort(), standbyExit) });
    const standby = await waitFor('the standby ops server', () => readyz(standbyPort));
    expect(standby).toEqual({
      status: 503,
      body: {
        status: 'unavailable',
        // Saying why: it waits for the slot (or has not tried yet).
        checks: {
          listener: expect.stringMatching(
            /^(standing by: replication slot "\w+" is in use by another reader|connecting to PostgreSQL)$/,
          ) as unknown,
        },
      },
    });

    await cache.set(`${name}:item:1`, 'stale');
    await db.query("INSERT INTO items (id, value, n) VALUES (1, 'one', 1)");
    await waitFor('item:1 purged through Kafka', async () => (await cache.exists(`${name}:item:1`)) === 0, {
      timeoutMs: 20_000,
    });

    // The active listener stops; the standby takes the slot over and becomes ready.
    expect(await listener.stop()).toBe(0);
    await waitUntilReady(standbyPort);
    await cache.set(`${name}:item:2`, 'stale');
    await db.query("INSERT INTO items (id, value, n) VALUES (2, 'two', 2)");
    await waitFor(
      'item:2 purged after the takeover',
      async () => (await cache.exists(`${name}:item:2`)) === 0,
      {
        timeoutMs: 20_000,
      },
    );

    const status = await waitFor('the consumer group to have caught up', async () => {
      const current = await statusJson();
      return current.kafka.consumerLag === 0 ? current : undefined;
    });
    expect(status.transport).toBe('kafka');
    expect(status.slot).toMatchObject({ exists: true, active: true });
    expect(status.kafka.partitions).toHaveLength(2);
    expect(status.kafka.deadLetters).toBe(0);
    const table = await cli('status');
    expect(table.code).toBe(0);
    expect(table.out).toMatch(
      new RegExp(`^consumer lag\\s+0 events \\(group ${name}, 2 partitions\\)$`, 'm'),
    );
    expect(table.out).toMatch(new RegExp(`^dead-letter events\\s+0 in ${name}\\.dlq$`, 'm'));
  });

  it('dlq list shows a poison event with its error; redrive sends it back through the invalidator', async () => {
    const kafka = new Kafka({ clientId: name, brokers: services.kafkaBrokers, logLevel: logLevel.NOTHING });
    const producer = kafka.producer();
    await producer.connect();
    try {
      await producer.send({ topic: `${name}.changes`, messages: [{ key: 'poison', value: 'not json {' }] });
    } finally {
      await producer.disconnect();
    }
    await waitFor(
      'the poison event in the dead-letter topic',
      async () => (await statusJson()).kafka.deadLetters === 1,
      {
        timeoutMs: 20_000,
      },
    );

    const listed = await cli('dlq', 'list');
    expect(listed.code, listed.err).toBe(0);
    expect(listed.out).toMatch(
      /^\d+:0 {2}\S+ {2}undecodable {2}table - {2}target - {2}rules - {2}lsn -\n {4}WP_EVENT_INVALID: not JSON.*\n {4}not json \{\n$/,
    );
    const json = await cli('dlq', 'list', '--json');
    const events = JSON.parse(json.out) as Array<{
      key: string;
      event: string;
      cause: string;
      error: string;
    }>;
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ key: 'poison', event: 'not json {', cause: 'undecodable' });
    expect(events[0]?.error).toMatch(/^not JSON/);
    expect((await cli('dlq', 'list', '--reason', 'purge-rejected')).out).toBe(
      `no selected dead-letter events in ${name}.dlq\n`,
    );

    const redriven = await cli('dlq', 'redrive');
    expect(redriven).toEqual({
      code: 0,
      out: `copied 1 dead-letter event from ${name}.dlq back to ${name}.changes\n`,
      err: '',
    });
    // Still poison, so the invalidator dead-letters it again: the redrive really went through it.
    await waitFor(
      'the redriven event to come back',
      async () => (await statusJson()).kafka.deadLetters === 2,
      {
        timeoutMs: 20_000,
      },
    );

    const wrongSource = await cli('dlq', 'redrive', '--id', '7');
    expect(wrongSource.code).toBe(2);
    expect(wrongSource.err).toBe(
      "walpurge dlq redrive: --id applies to --source writes only\nRun 'walpurge dlq redrive --help' for usage.\n",
    );
  });

  it('flusher role: failed writes in status and dlq list, redrive after the fix; not ready without its Redis', async () => {
    const flusher = await startRole('flusher');
    expect((await readyz(flusher.port)).body).toEqual({ status: 'ok', checks: { flusher: 'ok' } });
    queue = new Redis(queueRedis.url, { maxRetriesPerRequest: null });
    // Rows are checked against the table before they are accepted: the client needs the database.
    const writesPool = new pg.Pool({ connectionString: database.url, max: 2 });
    writes = createWriteClient({
      cacheRedis: cache,
      queueRedis: queue,
      database: writesPool,
      owned: { pool: writesPool },
      queuePrefix: `${name}:wb:`,
      cacheKeyPrefix: `${name}:`,
      keys: (_table, row) => [`item:${String(row['id'])}`],
    });
    try {
      await writes.writeBehind('items', { id: 10, value: 'ok', n: 1 });
      await writes.writeBehind('items', { id: 11, value: 'violates the check', n: -5 });
      await waitFor('one failed write', async () => (await statusJson()).writeBehind.failed === 1, {
        timeoutMs: 20_000,
      });
      const status = await statusJson();
      expect(status.writeBehind).toMatchObject({ pending: 1, failed: 1 });
      expect(status.writeBehind.oldestPendingAgeMs).toBeGreaterThanOrEqual(0);
      const table = await cli('status');
      expect(table.out).toMatch(/^write-behind queue\s+1 pending, oldest \d+(\.\d)? (ms|s) old$/m);
      expect(table.out).toMatch(/^failed writes\s+1 \(walpurge dlq list --source writes\)$/m);

      const listed = await cli('dlq', 'list', '--source', 'writes');
      expect(listed.code, listed.err).toBe(0);
      const failedLine =
        /^(\S+) {2}public\.items \{"id":11\} {2}\S+ {2}attempts 1\n {4}.*check constraint.*$/m.exec(
          listed.out,
        );
      expect(failedLine, listed.out).not.toBeNull();

      // The operator fixes the cause, then redrives that job.
      await db.query('ALTER TABLE items DROP CONSTRAINT items_n_check');
      const redriven = await cli('dlq', 'redrive', '--source', 'writes', '--id', failedLine?.[1] ?? '');
      expect(redriven).toEqual({ code: 0, out: `re-queued 1 failed write: ${failedLine?.[1]}\n`, err: '' });
      await waitFor(
        'row 11 flushed',
        async () => (await db.query('SELECT n FROM items WHERE id = 11')).rows[0]?.n === -5,
      );
      await waitFor('nothing pending', async () => (await statusJson()).writeBehind.pending === 0);
      expect((await db.query('SELECT id FROM items WHERE id >= 10 ORDER BY id')).rows).toEqual([
        { id: 10 },
        { id: 11 },
      ]);
      expect((await cli('dlq', 'list', '--source', 'writes')).out).toBe('no failed writes\n');
      // A job id that is not a failed write (a typo, or redriven already) fails the command.
      expect(await cli('dlq', 'redrive', '--source', 'writes', '--id', `${failedLine?.[1]},nope`)).toEqual({
        code: 1,
        out: 're-queued 0 failed writes\n',
        err: `not a failed write (wrong id, or already redriven): ${failedLine?.[1]}, nope\n`,
      });

      // The queue Redis goes away: the flusher is not ready, and status says the queue is unavailable.
      await queueRedis.stop();
      await waitFor(
        'the flusher to report not ready',
        async () => (await readyz(flusher.port)).status === 503,
      );
      expect((await readyz(flusher.port)).body.checks).toEqual({ flusher: 'not ready' });
      const degraded = await cli('status');
      expect(degraded.code).toBe(0);
      expect(degraded.out).toMatch(/^write-behind\s+unavailable: .+$/m);

      // A queue Redis on that address again: the flusher reconnects and is ready again.
      queueRedis = await startLocalRedis({ persistent: true, port: queueRedis.port });
      await waitUntilReady(flusher.port);
    } finally {
      await writes.close();
      queue.disconnect();
    }
  });
});
