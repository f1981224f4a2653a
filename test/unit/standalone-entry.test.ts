import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// Each service's own entry point (services/*/src/main.ts, runStandalone in @walpurge/core) must
// treat user mistakes like the CLI does: one located line and a usage exit code, never a stack.
const repoRoot = resolve(import.meta.dirname, '../..');
const run = promisify(execFile);

async function main(role: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(
      process.execPath,
      ['--conditions=@walpurge/source', '--import', 'tsx', `services/${role}/src/main.ts`, ...args],
      { cwd: repoRoot, env: { ...process.env, WALPURGE_CONFIG: '' }, timeout: 30_000 },
    );
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: failed.code ?? -1, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' };
  }
}

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'walpurge-entry-'));
  await writeFile(join(dir, 'typo.yaml'), 'databse:\n  url: postgres://x\n');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe.each(['listener', 'invalidator', 'flusher'])('services/%s/src/main.ts', (role) => {
  it('reports a config mistake with its file and line, exit 1, no stack trace', async () => {
    const file = join(dir, 'typo.yaml');
    const result = await main(role, ['--config', file]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`walpurge ${role}: ${file}: `);
    expect(result.stderr).toContain(`${file}:1:1: databse: unknown key 'databse'`);
    expect(result.stderr).not.toMatch(/^\s+at /m);
  });

  it('answers a wrong option or a missing --config with its usage, exit 2', async () => {
    const bogus = await main(role, ['--bogus']);
    expect(bogus.code).toBe(2);
    expect(bogus.stderr).toContain(`usage: walpurge-${role} --config`);
    const missing = await main(role, []);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain(`usage: walpurge-${role} --config`);
  });
});
