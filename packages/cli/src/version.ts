import { readFileSync } from 'node:fs';
import { z } from 'zod';

/**
 * The version of the installed `walpurge` package, read from its own package.json (one level above
 * src/ and dist/ alike) so that `walpurge --version` can never disagree with what npm installed.
 */
export function cliVersion(): string {
  const manifest: unknown = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  return z.object({ version: z.string().min(1) }).parse(manifest).version;
}
