import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';

/**
 * The workspace's package.json files, for the release tooling: which packages are published (every
 * one not `private`), and the fields they must share with the root package.json, where the version,
 * licence, repository and engines are stated once.
 */
export const repoRoot = join(import.meta.dirname, '../..');

const repositorySchema = z.object({
  type: z.literal('git'),
  url: z.string().min(1),
  directory: z.string().optional(),
});

const manifestSchema = z
  .object({
    name: z.string().min(1),
    version: z.string().min(1),
    private: z.boolean().optional(),
    license: z.string().optional(),
    repository: repositorySchema.optional(),
    engines: z.record(z.string(), z.string()).optional(),
    exports: z.record(z.string(), z.unknown()).optional(),
    publishConfig: z.record(z.string(), z.unknown()).optional(),
    dependencies: z.record(z.string(), z.string()).optional(),
    peerDependencies: z.record(z.string(), z.string()).optional(),
    devDependencies: z.record(z.string(), z.string()).optional(),
  })
  .loose();
export type Manifest = z.infer<typeof manifestSchema>;

const rootManifestSchema = manifestSchema.extend({
  license: z.string().min(1),
  repository: repositorySchema,
  engines: z.object({ node: z.string().min(1) }),
});

export interface WorkspacePackage {
  /** Directory relative to the repository root, e.g. `packages/client`. */
  readonly dir: string;
  readonly manifest: Manifest;
}

function readManifest(file: string): unknown {
  return JSON.parse(readFileSync(file, 'utf8'));
}

export function readRootManifest(): z.infer<typeof rootManifestSchema> {
  return rootManifestSchema.parse(readManifest(join(repoRoot, 'package.json')));
}

/** Every package the pnpm-workspace.yaml globs match (`dir` or `dir/*`, the only forms it uses). */
export function workspacePackages(): WorkspacePackage[] {
  const workspace = z
    .object({ packages: z.array(z.string()) })
    .parse(parseYaml(readFileSync(join(repoRoot, 'pnpm-workspace.yaml'), 'utf8')));
  const dirs = workspace.packages.flatMap((pattern) => {
    if (!pattern.endsWith('/*')) return [pattern];
    if (pattern.slice(0, -2).includes('*')) throw new Error(`unsupported workspace glob '${pattern}'`);
    const parent = pattern.slice(0, -2);
    return readdirSync(join(repoRoot, parent), { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => `${parent}/${entry.name}`);
  });
  return dirs.map((dir) => ({
    dir,
    manifest: manifestSchema.parse(readManifest(join(repoRoot, dir, 'package.json'))),
  }));
}

/** The packages `pnpm publish -r` publishes: every workspace package not marked `private`. */
export function publishedPackages(): WorkspacePackage[] {
  return workspacePackages().filter((pkg) => pkg.manifest.private !== true);
}

/** The packages a package needs installed to run: its dependencies and peerDependencies. */
export function runtimeDependencies(manifest: Manifest): string[] {
  return [...Object.keys(manifest.dependencies ?? {}), ...Object.keys(manifest.peerDependencies ?? {})];
}

/**
 * `names` and every workspace package they need at run time, transitively (third-party packages are
 * left out: the registry resolves those).
 */
export function runtimeClosure(names: readonly string[]): Set<string> {
  const byName = new Map(workspacePackages().map((pkg) => [pkg.manifest.name, pkg.manifest]));
  const needed = new Set<string>();
  const visit = (name: string): void => {
    const manifest = byName.get(name);
    if (!manifest || needed.has(name)) return;
    needed.add(name);
    for (const dependency of runtimeDependencies(manifest)) visit(dependency);
  };
  for (const name of names) visit(name);
  return needed;
}

/** What a published package must carry from the root package.json (its own directory filled in). */
export function sharedFields(dir: string): Pick<Manifest, 'version' | 'license' | 'repository' | 'engines'> {
  const root = readRootManifest();
  return {
    version: root.version,
    license: root.license,
    repository: { type: root.repository.type, url: root.repository.url, directory: dir },
    engines: root.engines,
  };
}

/**
 * Rewrites a package.json with `fields` set, keeping key order (new keys go last). The output is
 * what prettier's json-stringify formatting gives, so `prettier --check` stays green.
 */
export function updateManifest(dir: string, fields: Record<string, unknown>): void {
  const file = join(repoRoot, dir, 'package.json');
  const manifest = z.record(z.string(), z.unknown()).parse(readManifest(file));
  writeFileSync(file, `${JSON.stringify({ ...manifest, ...fields }, null, 2)}\n`);
}

/** `exports` as published: the workspace-only `@walpurge/source` condition (src/*.ts) removed. */
export function publishedExports(exports: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(exports).map(([subpath, target]) => [
      subpath,
      typeof target === 'object' && target !== null
        ? Object.fromEntries(Object.entries(target).filter(([condition]) => condition !== '@walpurge/source'))
        : target,
    ]),
  );
}

export function relativeToRoot(path: string): string {
  return relative(repoRoot, path);
}
