import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { publishedPackages, readRootManifest, repoRoot } from './workspace-packages.js';

const run = promisify(execFile);

/**
 * `pnpm pack` of every published package into `destination` (workspace:* becomes the release
 * version): the tarballs `pnpm -r publish` would upload. Private packages are left out, which a
 * bare `pnpm -r pack` does not do. The pnpm is the one package.json `packageManager` pins.
 */
export async function packPublishedPackages(destination: string): Promise<void> {
  const pnpm = readRootManifest().packageManager;
  if (typeof pnpm !== 'string') throw new Error('package.json has no packageManager (pnpm@X.Y.Z)');
  const filters = publishedPackages().flatMap(({ manifest }) => ['--filter', manifest.name]);
  await run('npx', ['--yes', pnpm, '-r', ...filters, 'pack', '--pack-destination', destination], {
    cwd: repoRoot,
    maxBuffer: 64 * 1024 * 1024,
  });
}
