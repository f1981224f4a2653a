import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// A service that fails to start with an unexpected error (not a WalpurgeError) may carry a
// connection string in its message: what runStandalone prints must be redacted like the logs.
const repoRoot = resolve(import.meta.dirname, '../../..');
const run = promisify(execFile);

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'walpurge-standalone-'));
  await writeFile(join(dir, 'walpurge.yaml'), 'any: thing\n');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('runStandalone start-up failure', () => {
  it('prints the error with secrets redacted, exit 1', async () => {
    const script = `
      import { runStandalone } from ${JSON.stringify(join(repoRoot, 'packages/core/src/standalone.ts'))};
      await runStandalone({
        role: 'probe',
        loadConfig: async () => ({}),
        settings: () => ({ logLevel: 'fatal', httpPort: 0, httpHost: '127.0.0.1', shutdownTimeoutMs: 1000 }),
        create: () => { throw new Error('cannot reach postgres://walpurge:hunter2@db:5432/app'); },
        notReadyReason: 'never',
      });`;
    let stderr = '';
    let code = 0;
    try {
      await run(
        process.execPath,
        [
          '--conditions=@walpurge/source',
          '--import',
          'tsx',
          '--input-type=module',
          '-e',
          script,
          '--',
          '--config',
          join(dir, 'walpurge.yaml'),
        ],
        { cwd: repoRoot, timeout: 30_000 },
      );
    } catch (error) {
      const failed = error as { code?: number; stderr?: string };
      code = failed.code ?? -1;
      stderr = failed.stderr ?? '';
    }
    expect(code).toBe(1);
    expect(stderr).toContain('walpurge probe: ');
    expect(stderr).toContain('cannot reach postgres://walpurge:');
    expect(stderr).not.toContain('hunter2');
  });
});
