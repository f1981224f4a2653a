import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startLocalRedis, type LocalRedis } from '@walpurge/testing';
import { runCli } from './cli.js';
import { captureIo } from './testing/capture-io.js';

/**
 * `validate` on pattern rules against a real cache Redis of its own (DBSIZE must be exact, and the
 * shared test Redis holds other suites' keys).
 */
const dir = mkdtempSync(join(tmpdir(), 'walpurge-pattern-cost-'));
let cache: LocalRedis;
let client: Redis;
const KEYS = 50_000;

beforeAll(async () => {
  cache = await startLocalRedis();
  client = new Redis(cache.url);
  const pipeline = client.pipeline();
  for (let i = 0; i < KEYS; i += 1000) {
    const args: string[] = [];
    for (let j = i; j < i + 1000; j++) args.push(`other:${j}`, 'v');
    pipeline.mset(...args);
  }
  await pipeline.exec();
});
afterAll(async () => {
  client?.disconnect();
  await cache?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const RULES = `rules:
  - table: users
    on: [insert, update, delete]
    redis:
      patterns: ["user:{name}:*", "page:*:{id}"]
      keys: ["user:{id}"]
`;

async function validate(
  redisUrl: string,
  ...args: string[]
): Promise<{ code: number; out: string; err: string }> {
  const file = join(dir, `${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, `redis:\n  url: ${redisUrl}\n${RULES}`);
  const io = captureIo({});
  const code = await runCli(['validate', '--config', file, ...args], io);
  return { code, out: io.out(), err: io.err() };
}

describe('validate: the cost of pattern rules', () => {
  it('estimates keys and time per sweep from DBSIZE and a SCAN sample; recommends a tag for prefix:{col}:*', async () => {
    const { code, out, err } = await validate(cache.url);
    expect(code).toBe(0);
    expect(out).toMatch(/OK/);
    const lines = err.trim().split('\n');
    const user = lines.find((line) => line.includes('rules[0].redis.patterns[0]'));
    const page = lines.find((line) => line.includes('rules[0].redis.patterns[1]'));
    expect(user).toMatch(
      /warning: .*waits for a sweep of the whole cache Redis: 50,000 keys per sweep, about \d/,
    );
    expect(user).toMatch(/keys\/s \(measured\)/);
    expect(user).toContain("a tag per row (tags: ['user:{name}']");
    // Not one row's keys: a cost, no tag hint.
    expect(page).toMatch(/50,000 keys per sweep/);
    expect(page).not.toContain('tag per row');
    expect(lines.some((line) => line.includes('redis.keys'))).toBe(false);
  });

  it('--scan-rate states the SCAN speed instead of measuring it', async () => {
    const { code, err } = await validate(cache.url, '--scan-rate', '10000');
    expect(code).toBe(0);
    expect(err).toContain('50,000 keys per sweep, about 5.0 s per sweep at 10,000 keys/s (stated)');
    const bad = await validate(cache.url, '--scan-rate', 'fast');
    expect(bad.code).not.toBe(0);
    expect(bad.err).toMatch(/--scan-rate must be a positive number/);
  });

  it('an unreachable cache Redis skips the estimate with a warning, not a failure; tag hints remain', async () => {
    const { code, err } = await validate(`redis://127.0.0.1:${await freePort()}`);
    expect(code).toBe(0);
    expect(err).toMatch(/warning: redis: pattern purge cost not estimated: cannot reach the cache Redis/);
    expect(err).toContain("tags: ['user:{name}']");
    expect(err).not.toMatch(/keys per sweep/);
  });

  it('--offline: no connection, tag hints only', async () => {
    const { code, err } = await validate(cache.url, '--offline');
    expect(code).toBe(0);
    expect(err).not.toMatch(/keys per sweep|not estimated/);
    expect(err).toContain("tags: ['user:{name}']");
  });
});
