import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { resolveDemoFiles } from './demo-files.js';

const roots: string[] = [];
/** A directory tree of the given (empty) files and `dir/`s, and the URL of `packageDir` in it. */
function tree(files: string[], packageDir: string): { root: string; pkg: URL } {
  const root = mkdtempSync(join(tmpdir(), 'walpurge-demo-files-'));
  roots.push(root);
  for (const file of files) {
    const isDir = file.endsWith('/');
    mkdirSync(isDir ? join(root, file) : join(root, file, '..'), { recursive: true });
    if (!isDir) writeFileSync(join(root, file), '');
  }
  return { root, pkg: pathToFileURL(join(root, packageDir, '/')) };
}

afterEach(() => {
  for (const root of roots.splice(0)) rmSync(root, { recursive: true, force: true });
});

describe('resolveDemoFiles', () => {
  it("in a checkout uses the repository's examples/, even while a packed copy sits in the package", () => {
    const { root, pkg } = tree(
      [
        'examples/walpurge.yaml',
        'packages/cli/src/',
        'packages/cli/dist/',
        'packages/cli/examples/walpurge.yaml',
      ],
      'packages/cli',
    );
    expect(resolveDemoFiles(pkg)).toEqual({
      config: join(root, 'examples', 'walpurge.yaml'),
      schema: join(root, 'examples', 'demo', 'schema.sql'),
    });
  });

  it('in an install uses the packaged copy', () => {
    const { root, pkg } = tree(
      ['node_modules/walpurge/dist/', 'node_modules/walpurge/examples/walpurge.yaml'],
      'node_modules/walpurge',
    );
    expect(resolveDemoFiles(pkg).config).toBe(
      join(root, 'node_modules', 'walpurge', 'examples', 'walpurge.yaml'),
    );
  });

  it("in an install without the packaged copy fails, never falling back to the project's examples/", () => {
    const { pkg } = tree(
      ['examples/walpurge.yaml', 'examples/demo/schema.sql', 'node_modules/walpurge/dist/'],
      'node_modules/walpurge',
    );
    expect(() => resolveDemoFiles(pkg)).toThrow(
      /^the walpurge package has no examples\/ \(.*\): it was packed without its prepack script$/,
    );
  });
});
