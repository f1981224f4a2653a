import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

const PackageJson = z.object({
  dependencies: z.record(z.string(), z.string()).default({}),
  peerDependencies: z.record(z.string(), z.string()).default({}),
});

function packageJson(dir: string): z.infer<typeof PackageJson> {
  return PackageJson.parse(JSON.parse(readFileSync(join(repoRoot, dir, 'package.json'), 'utf8')));
}

/** Shipped sources of a package: its src, without tests and test support. */
function shippedSources(dir: string): string[] {
  return readdirSync(join(repoRoot, dir, 'src'), { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.ts') && !file.endsWith('.test.ts') && !file.includes('test-support'))
    .map((file) => join(repoRoot, dir, 'src', file));
}

function importersOf(dir: string, specifier: string): string[] {
  const pattern = new RegExp(`from '${specifier.replace('/', '\\/')}(/[^']*)?'`);
  return shippedSources(dir)
    .filter((file) => pattern.test(readFileSync(file, 'utf8')))
    .map((file) => relative(repoRoot, file));
}

// The write-behind storage layout is a contract between the application SDK and the services; the
// services depend on that contract, never on the SDK (and its read side) itself.
describe('write-behind package boundaries', () => {
  for (const service of ['services/flusher', 'packages/cli']) {
    it(`${service} reaches the write-behind layout through @walpurge/write-behind, not @walpurge/client`, () => {
      expect(packageJson(service).dependencies).not.toHaveProperty('@walpurge/client');
      expect(packageJson(service).dependencies).toHaveProperty('@walpurge/write-behind');
      expect(importersOf(service, '@walpurge/write-behind').length).toBeGreaterThan(0); // the scan finds imports
      expect(importersOf(service, '@walpurge/client')).toEqual([]);
    });
  }

  it('@walpurge/write-behind needs neither the SDK nor bullmq at run time', () => {
    const { dependencies, peerDependencies } = packageJson('packages/write-behind');
    expect(Object.keys({ ...dependencies, ...peerDependencies })).not.toContain('@walpurge/client');
    expect(Object.keys({ ...dependencies, ...peerDependencies })).not.toContain('bullmq');
    expect(importersOf('packages/write-behind', '@walpurge/client')).toEqual([]);
    expect(importersOf('packages/write-behind', 'bullmq')).toEqual([]);
  });

  it('@walpurge/client leaves bullmq and pg to the applications that write', () => {
    const { dependencies, peerDependencies } = packageJson('packages/client');
    expect(dependencies).not.toHaveProperty('bullmq');
    expect(dependencies).not.toHaveProperty('pg');
    expect(peerDependencies).toHaveProperty('bullmq');
    expect(peerDependencies).toHaveProperty('pg');
  });
});
