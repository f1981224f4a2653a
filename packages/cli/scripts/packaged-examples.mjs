// The walpurge package's prepack (`copy`) and postpack (`remove`): the repository's examples/ packed
// into the package, where `walpurge quickstart` reads them in an install. Removed first, so a copy an
// interrupted pack left behind never keeps a file examples/ no longer has.
import { cpSync, rmSync } from 'node:fs';

const packaged = new URL('../examples/', import.meta.url);
const action = process.argv[2];
if (action !== 'copy' && action !== 'remove') throw new Error('usage: packaged-examples.mjs copy|remove');

rmSync(packaged, { recursive: true, force: true });
if (action === 'copy') {
  cpSync(new URL('../../../examples/', import.meta.url), packaged, { recursive: true });
}
