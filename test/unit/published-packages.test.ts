import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import semver from 'semver';
import { describe, expect, it } from 'vitest';
import {
  publishedExports,
  publishedPackages,
  readRootManifest,
  repoRoot,
  runtimeClosure,
  runtimeDependencies,
  sharedFields,
  workspacePackages,
} from '../release/workspace-packages.js';

/** What users install; everything else published is there because these two need it at run time. */
const ENTRY_PACKAGES = ['walpurge', '@walpurge/client'];
const FIX = 'run `pnpm run release:version` to copy it from the root package.json';

const published = publishedPackages();
const names = new Set(published.map((pkg) => pkg.manifest.name));
const byName = new Map(workspacePackages().map((pkg) => [pkg.manifest.name, pkg.manifest]));

describe('published packages', () => {
  it('are exactly the CLI, the client and the workspace packages they need at run time', () => {
    const needed = runtimeClosure(ENTRY_PACKAGES);
    expect([...names].sort()).toEqual([...needed].sort());
    expect(names.has('@walpurge/testing')).toBe(false);
  });

  it('depend on no private workspace package (a dev-only one may only be a devDependency)', () => {
    for (const { manifest } of published)
      for (const dependency of runtimeDependencies(manifest))
        if (byName.has(dependency)) expect(names, `${manifest.name} → ${dependency}`).toContain(dependency);
  });

  it('have a semver release version, stated in the root package.json', () => {
    const { version } = readRootManifest();
    expect(semver.valid(version)).toBe(version);
  });

  it.each(published.map((pkg) => [pkg.manifest.name, pkg] as const))(
    '%s carries the root version, licence, repository and engines, and the root LICENSE file',
    (_name, { dir, manifest }) => {
      const shared = sharedFields(dir);
      expect(manifest.version, FIX).toBe(shared.version);
      expect(manifest.license, FIX).toBe(shared.license);
      expect(manifest.repository, FIX).toEqual(shared.repository);
      expect(manifest.engines, FIX).toEqual(shared.engines);
      expect(readFileSync(join(repoRoot, dir, 'LICENSE'), 'utf8'), FIX).toBe(
        readFileSync(join(repoRoot, 'LICENSE'), 'utf8'),
      );
    },
  );

  it.each(published.map((pkg) => [pkg.manifest.name, pkg] as const))(
    '%s publishes its exports without the workspace-only source condition',
    (_name, { manifest }) => {
      expect(manifest.exports).toBeDefined();
      expect(manifest.publishConfig?.['access']).toBe('public');
      expect(manifest.publishConfig?.['exports'], FIX).toEqual(publishedExports(manifest.exports ?? {}));
      expect(JSON.stringify(manifest.publishConfig)).not.toContain('src/');
    },
  );
});

/**
 * A package whose public API takes the application's own ioredis, pg or bullmq object must share
 * that copy: as a dependency npm may install a second version beside the application's (two sets of
 * types, TS2322 on `createCacheClient({ redis })`; two copies at run time).
 */
const USER_INSTANCES: Record<string, string[]> = {
  '@walpurge/client': ['ioredis', 'pg', 'bullmq'],
  '@walpurge/write-behind': ['ioredis', 'pg'],
};

describe("packages that take the application's client objects", () => {
  it.each(Object.entries(USER_INSTANCES))('%s has them as peer dependencies only', (name, peers) => {
    const manifest = byName.get(name);
    expect(manifest, name).toBeDefined();
    for (const peer of peers) {
      expect(manifest?.dependencies ?? {}, `${name} → ${peer}`).not.toHaveProperty([peer]);
      expect(manifest?.peerDependencies ?? {}, `${name} → ${peer}`).toHaveProperty([peer]);
      // The workspace still installs it, for the package's own build and tests.
      expect(manifest?.devDependencies ?? {}, `${name} → ${peer}`).toHaveProperty([peer]);
    }
  });
});

describe('docs/publishing.md', () => {
  const doc = readFileSync(join(repoRoot, 'docs', 'publishing.md'), 'utf8');

  it('lists exactly the published packages in its table', () => {
    const listed = [...doc.matchAll(/^\| `((?:@walpurge\/)?[\w-]+)`/gm)].map((match) => match[1]);
    expect(listed.sort()).toEqual([...names].sort());
  });

  it('names root scripts and files that exist', () => {
    const { scripts } = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };
    const runs = [...doc.matchAll(/pnpm run ([\w:-]+)/g)].map((match) => match[1] ?? '');
    expect(runs.length).toBeGreaterThan(0);
    for (const script of runs) expect(scripts, script).toHaveProperty([script]);
    const files = [...doc.matchAll(/`((?:test|packages|examples)\/[\w./-]+\.ts)`/g)].map(
      (match) => match[1] ?? '',
    );
    expect(files.length).toBeGreaterThan(0);
    for (const file of files) expect(existsSync(join(repoRoot, file)), file).toBe(true);
  });

  it('publishes from CI only: pnpm publish with --no-git-checks, after checking the tag is on main', () => {
    const publishes = [...doc.matchAll(/`(pnpm -r publish [^`]+)`/g)].map((match) => match[1]);
    expect(publishes.length).toBeGreaterThan(0);
    // A tag checkout is a detached HEAD, which pnpm 10 refuses without it (ERR_PNPM_GIT_UNKNOWN_BRANCH).
    for (const command of publishes) expect(command).toContain('--no-git-checks');
    expect(doc).toContain('git merge-base --is-ancestor "$GITHUB_SHA" origin/main');
    expect(doc).toContain('NPM_CONFIG_PROVENANCE=true');
  });
});
