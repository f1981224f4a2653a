/**
 * `pnpm run release:version [X.Y.Z]`: sets the release version in the root package.json (given one),
 * then copies version, licence, repository and engines from the root package.json (and the root
 * LICENSE file) to every published package and derives each one's publishConfig.exports from its exports. The root package.json is the
 * one place these are stated; test/unit/published-packages.test.ts fails when a package disagrees.
 */
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import semver from 'semver';
import {
  publishedExports,
  publishedPackages,
  repoRoot,
  sharedFields,
  updateManifest,
} from '../release/workspace-packages.js';

const [wanted, ...extra] = process.argv.slice(2);
if (extra.length > 0 || (wanted !== undefined && semver.valid(wanted) !== wanted)) {
  console.error(
    `usage: pnpm run release:version [X.Y.Z]  (a semver version without 'v'; got '${process.argv.slice(2).join(' ')}')`,
  );
  process.exit(2);
}
if (wanted !== undefined) updateManifest('.', { version: wanted });

for (const { dir, manifest } of publishedPackages()) {
  const publishConfig = {
    ...manifest.publishConfig,
    access: 'public',
    ...(manifest.exports ? { exports: publishedExports(manifest.exports) } : {}),
  };
  const shared = sharedFields(dir);
  updateManifest(dir, { ...shared, publishConfig });
  // npm shows and ships a package's own LICENSE file; pnpm pack does not add the root one.
  copyFileSync(join(repoRoot, 'LICENSE'), join(repoRoot, dir, 'LICENSE'));
  console.log(`${manifest.name}@${shared.version} (${dir})`);
}
