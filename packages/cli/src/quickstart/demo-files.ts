import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

/**
 * The demo's examples/: the copy packed into the npm package (its prepack script copies the
 * repository's examples/ next to dist/), else examples/ at the repository root, from src/quickstart
 * or dist/quickstart alike.
 */
const packaged = fileURLToPath(new URL('../../examples/', import.meta.url));
export const examplesDir = existsSync(packaged)
  ? packaged
  : fileURLToPath(new URL('../../../../examples/', import.meta.url));
export const exampleConfigPath = `${examplesDir}walpurge.yaml`;
export const demoSchemaPath = `${examplesDir}demo/schema.sql`;

export function readDemoSchema(): Promise<string> {
  return readFile(demoSchemaPath, 'utf8');
}
