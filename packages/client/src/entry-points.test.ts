import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const packageDir = fileURLToPath(new URL('..', import.meta.url));

/**
 * Module hooks for the child process: `bullmq` and `pg` (the optional peers of @walpurge/client)
 * resolve as if they were not installed, so an import that needs them fails. Both the bare specifier
 * and the resolved file are checked, so a deep import (`pg/lib/…`) or a relative import inside the
 * package is caught as well.
 */
const HIDE_PACKAGES_HOOKS = `
let hidden = [];
export function initialize(data) { hidden = data; }
export async function resolve(specifier, context, next) {
  const bare = specifier.startsWith('@') ? specifier : specifier.split('/')[0];
  const resolved = hidden.includes(bare) ? undefined : await next(specifier, context);
  const inside = resolved && hidden.find((name) => resolved.url.includes('/node_modules/' + name + '/'));
  const name = resolved ? inside : bare;
  if (name) {
    const error = new Error("Cannot find package '" + name + "' (hidden by the test)");
    error.code = 'ERR_MODULE_NOT_FOUND';
    throw error;
  }
  return resolved;
}`;

const CHILD = `
import { register } from 'node:module';
const hidden = JSON.parse(process.env.HIDDEN_PACKAGES);
register('data:text/javascript,' + encodeURIComponent(process.env.HOOKS), import.meta.url, { data: hidden });
const entry = await import(process.env.ENTRY_POINT);
console.log(JSON.stringify(Object.keys(entry).sort()));
`;

interface ChildResult {
  exports: string[] | undefined;
  error: string | undefined;
}

/** Imports `entryPoint` in a fresh node (sources through tsx) with `hidden` packages unresolvable. */
function importInFreshNode(entryPoint: string, hidden: string[]): Promise<ChildResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', '--conditions=@walpurge/source', '--input-type=module', '--eval', CHILD],
      {
        cwd: packageDir,
        env: {
          ...process.env,
          ENTRY_POINT: entryPoint,
          HIDDEN_PACKAGES: JSON.stringify(hidden),
          HOOKS: HIDE_PACKAGES_HOOKS,
        },
        timeout: 60_000,
      },
      (error, stdout, stderr) => {
        if (error) resolve({ exports: undefined, error: `${error.message}\n${stderr}` });
        else
          resolve({
            exports: JSON.parse(stdout.trim().split('\n').at(-1) ?? 'null') as string[],
            error: undefined,
          });
      },
    );
  });
}

describe('entry points of @walpurge/client', () => {
  it('reads work without bullmq and pg installed', { timeout: 90_000 }, async () => {
    const { exports, error } = await importInFreshNode('@walpurge/client', ['bullmq', 'pg']);
    expect(error).toBeUndefined();
    expect(exports).toContain('createCacheClient');
    expect(exports).not.toContain('createWriteClient');
  });

  it('HTTP helpers work without bullmq and pg installed', { timeout: 90_000 }, async () => {
    const { exports, error } = await importInFreshNode('@walpurge/client/http', ['bullmq', 'pg']);
    expect(error).toBeUndefined();
    expect(exports).toContain('applyCacheHeaders');
  });

  it('writes load bullmq and pg', { timeout: 90_000 }, async () => {
    for (const missing of ['bullmq', 'pg']) {
      const { exports, error } = await importInFreshNode('@walpurge/client/write', [missing]);
      expect(exports).toBeUndefined();
      expect(error).toContain(`Cannot find package '${missing}'`);
    }
    const { exports, error } = await importInFreshNode('@walpurge/client/write', []);
    expect(error).toBeUndefined();
    expect(exports).toEqual(expect.arrayContaining(['createWriteClient', 'createWriteClientFromConfig']));
  });
});
