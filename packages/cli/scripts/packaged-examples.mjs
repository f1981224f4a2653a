// The walpurge package's prepack (`copy`) and postpack (`remove`): the repository's examples/ packed
// into the package, where `walpurge quickstart` reads them in an install. Removed first, so a copy an
// interrupted pack left behind never keeps a file examples/ no longer has.
import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';

const packaged = new URL('../examples/', import.meta.url);
const action = process.argv[2];
if (action !== 'copy' && action !== 'remove') throw new Error('usage: packaged-examples.mjs copy|remove');

rmSync(packaged, { recursive: true, force: true });
if (action === 'copy') {
  cpSync(new URL('../../../examples/', import.meta.url), packaged, { recursive: true });
  // The editor schema: in the repository it is packages/config/walpurge.schema.json; installed, the
  // @walpurge/config package sits beside walpurge (npm hoists it; pnpm links it there).
  const config = new URL('walpurge.yaml', packaged);
  const text = readFileSync(config, 'utf8');
  const installed = text.replace(
    '$schema=../packages/config/walpurge.schema.json',
    '$schema=../../@walpurge/config/walpurge.schema.json',
  );
  if (installed === text)
    throw new Error('examples/walpurge.yaml no longer names ../packages/config/walpurge.schema.json');
  writeFileSync(config, installed);
}
