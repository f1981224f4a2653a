/**
 * `pnpm run pack:published <dir>`: the tarballs of every published package, as a release would
 * upload them, for installing an unreleased build with plain npm (`npm install <dir>/*.tgz`).
 * Build first (`pnpm exec tsc -b`).
 */
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { packPublishedPackages } from '../release/pack-published.js';

const [destination, ...extra] = process.argv.slice(2);
if (destination === undefined || extra.length > 0) {
  console.error('usage: pnpm run pack:published <directory>');
  process.exit(2);
}
const target = resolve(process.env['INIT_CWD'] ?? process.cwd(), destination);
mkdirSync(target, { recursive: true });
await packPublishedPackages(target);
console.log(`packed into ${target}`);
