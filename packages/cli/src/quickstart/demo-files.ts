import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { ErrorCode, WalpurgeError } from '@walpurge/core';

export interface DemoFiles {
  /** The demo's walpurge.yaml (rules and connections). */
  config: string;
  /** The demo's tables, examples/demo/schema.sql. */
  schema: string;
}

/**
 * The quickstart demo's examples/, for the walpurge package at `packageRoot` (the directory holding
 * src/ or dist/). In a checkout (src/ is there) always the repository's examples/, never the copy the
 * prepack script leaves in the package while `pnpm pack` runs. In an install only the packaged copy:
 * the repository's place is then the user's project, whose examples/ quickstart must never run.
 */
export function resolveDemoFiles(packageRoot: URL): DemoFiles {
  const inCheckout = existsSync(new URL('src/', packageRoot));
  const examples = new URL(inCheckout ? '../../examples/' : 'examples/', packageRoot);
  if (!inCheckout && !existsSync(new URL('walpurge.yaml', examples)))
    throw new WalpurgeError(
      ErrorCode.ConfigNotFound,
      `the walpurge package has no examples/ (${fileURLToPath(examples)}): it was packed without its prepack script`,
      { hint: 'reinstall walpurge from the npm registry' },
    );
  return {
    config: fileURLToPath(new URL('walpurge.yaml', examples)),
    schema: fileURLToPath(new URL('demo/schema.sql', examples)),
  };
}

/** The demo files of this walpurge (src/quickstart and dist/quickstart are both two levels down). */
export function demoFiles(): DemoFiles {
  return resolveDemoFiles(new URL('../../', import.meta.url));
}

export function readDemoSchema(): Promise<string> {
  return readFile(demoFiles().schema, 'utf8');
}
