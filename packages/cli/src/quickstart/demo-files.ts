import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

/** examples/ at the repository root, from src/quickstart or dist/quickstart alike. */
export const examplesDir = fileURLToPath(new URL('../../../../examples/', import.meta.url));
export const exampleConfigPath = `${examplesDir}walpurge.yaml`;
export const demoSchemaPath = `${examplesDir}demo/schema.sql`;

export function readDemoSchema(): Promise<string> {
  return readFile(demoSchemaPath, 'utf8');
}
