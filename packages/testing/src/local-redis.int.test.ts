import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { startLocalRedis } from './index.js';

// The shared environment may come from env URLs; this one always exercises the local-process path.
describe('startLocalRedis', () => {
  it('offers a persistent mode for queues and leaves nothing behind on stop()', async () => {
    const lines: string[] = [];
    const server = await startLocalRedis({ persistent: true, log: (line) => lines.push(line) });
    const redis = new Redis(server.url);
    let pid = NaN;
    try {
      pid = Number(/process_id:(\d+)/.exec(await redis.info('server'))?.[1]);
      expect(await redis.config('GET', 'appendonly')).toEqual(['appendonly', 'yes']);
      expect(await redis.config('GET', 'maxmemory-policy')).toEqual(['maxmemory-policy', 'noeviction']);
      await redis.set('job', 'kept');
      expect(await redis.get('job')).toBe('kept');
    } finally {
      redis.disconnect();
    }
    await server.stop();

    expect(existsSync(dirname(server.logFile))).toBe(false);
    expect(pid).toBeGreaterThan(0);
    expect(isAlive(pid)).toBe(false);
    expect(lines.some((line) => line.includes('persistent'))).toBe(true);
  });
});

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
