import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { uniqueName } from '@walpurge/testing';
import { createCacheClient } from './cache-client.js';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = join(here, '../../../..');
const CHILDREN = 4;
const CALLS_PER_CHILD = 200;
const IN_PROCESS_CALLS = 200;
const LOADER_MS = 400;

interface ChildResult {
  values: string[];
  count: number;
  errors: string[];
  leaseWaits: number;
  failOpens: number;
}

/** A worker process and its stdout lines, so the test can wait for "ready" and read the result. */
function startWorker(env: Record<string, string>): { child: ChildProcess; nextLine: () => Promise<string> } {
  const child = spawn(
    'npx',
    ['tsx', '--conditions=@walpurge/source', join(here, 'test-fixtures/stampede-worker.ts')],
    {
      cwd: repoRoot,
      env: { ...process.env, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const lines: string[] = [];
  const waiting: Array<(line: string) => void> = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const waiter = waiting.shift();
    if (waiter) waiter(line);
    else lines.push(line);
  });
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code) => reject(new Error(`stampede worker exited with ${code}:\n${stderr}`))),
  );
  exited.catch(() => undefined);
  const nextLine = () => {
    const line = lines.shift();
    if (line !== undefined) return Promise.resolve(line);
    return Promise.race([new Promise<string>((resolve) => waiting.push(resolve)), exited]);
  };
  return { child, nextLine };
}

describe('stampede protection across processes', () => {
  const { redisUrl } = inject('services');
  const redis = new Redis(redisUrl);
  const children: ChildProcess[] = [];

  afterAll(() => {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    redis.disconnect();
  });

  it('1,000 concurrent misses of one key in 5 processes run the loader once', async () => {
    const prefix = `${uniqueName('stampede')}:`;
    const env = {
      STAMPEDE_REDIS_URL: redisUrl,
      STAMPEDE_PREFIX: prefix,
      STAMPEDE_KEY: 'hot',
      STAMPEDE_CALLS: String(CALLS_PER_CHILD),
      STAMPEDE_LOADER_MS: String(LOADER_MS),
    };
    const workers = Array.from({ length: CHILDREN }, () => startWorker(env));
    children.push(...workers.map((w) => w.child));
    for (const worker of workers) expect(await worker.nextLine()).toBe('ready');

    const client = createCacheClient({
      redis,
      keyPrefix: prefix,
      coalesce: false,
      leases: { ttlMs: 30_000 },
      // As in the workers: a loaded machine must not turn slow round trips into fail-open loads.
      redisTimeoutMs: 10_000,
    });
    for (const worker of workers) worker.child.stdin?.write('go\n');
    const local = await Promise.all(
      Array.from({ length: IN_PROCESS_CALLS }, () =>
        client.get(
          'hot',
          async () => {
            const run = await redis.incr(`${prefix}loader-runs`);
            await new Promise((resolve) => setTimeout(resolve, LOADER_MS));
            return { run, pid: process.pid };
          },
          { ttl: 60 },
        ),
      ),
    );
    const remote = await Promise.all(workers.map(async (w) => JSON.parse(await w.nextLine()) as ChildResult));
    await client.close();

    // A fail-open load (Redis too slow) runs the loader by design; none may happen here, and if one
    // does the failure says so rather than only "the loader ran 22 times".
    const failOpens =
      (await client.metrics.failOpen.get()).values.reduce((sum, v) => sum + v.value, 0) +
      remote.reduce((sum, r) => sum + r.failOpens, 0);
    expect(failOpens, 'get() calls that failed open to the loader').toBe(0);
    expect(await redis.get(`${prefix}loader-runs`)).toBe('1');
    const values = new Set([...local.map((v) => JSON.stringify(v)), ...remote.flatMap((r) => r.values)]);
    expect(values.size).toBe(1);
    expect(remote.map((r) => r.errors)).toEqual(remote.map(() => []));
    expect(local.length + remote.reduce((sum, r) => sum + r.count, 0)).toBe(1_000);
    const waits =
      ((await client.metrics.leaseWaits.get()).values[0]?.value ?? 0) +
      remote.reduce((sum, r) => sum + r.leaseWaits, 0);
    expect(waits).toBeGreaterThan(0);
  });
});
