/**
 * Reads the truth the deployment files must agree with from the workspace itself at test time:
 * package manifests, the CLI's option specs, the config schema, the ops server's paths and the
 * metric names the services register. Nothing here is a hand-kept list.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

export function repoPath(...parts: string[]): string {
  return join(repoRoot, ...parts);
}

export function readRepoFile(path: string): string {
  return readFileSync(repoPath(path), 'utf8');
}

const PackageJson = z.object({
  name: z.string(),
  version: z.string().optional(),
  packageManager: z.string().optional(),
  files: z.array(z.string()).optional(),
  bin: z.union([z.string(), z.record(z.string(), z.string())]).optional(),
  exports: z.unknown().optional(),
  dependencies: z.record(z.string(), z.string()).optional(),
});
export type PackageJson = z.infer<typeof PackageJson>;

export interface WorkspacePackage {
  /** Directory relative to the repository root, e.g. `packages/cli`. */
  dir: string;
  manifest: PackageJson;
}

export function readPackageJson(dir: string): PackageJson {
  return PackageJson.parse(JSON.parse(readRepoFile(join(dir, 'package.json'))));
}

/** Workspace packages per pnpm-workspace.yaml (`dir/*` globs and plain directories). */
export function workspacePackages(): WorkspacePackage[] {
  const workspace = z
    .object({ packages: z.array(z.string()) })
    .parse(parseYaml(readRepoFile('pnpm-workspace.yaml')));
  const dirs: string[] = [];
  for (const pattern of workspace.packages) {
    if (pattern.endsWith('/*')) {
      const parent = pattern.slice(0, -2);
      for (const entry of readdirSync(repoPath(parent))) {
        if (existsSync(repoPath(parent, entry, 'package.json'))) dirs.push(`${parent}/${entry}`);
      }
    } else if (existsSync(repoPath(pattern, 'package.json'))) dirs.push(pattern);
  }
  return dirs.map((dir) => ({ dir, manifest: readPackageJson(dir) }));
}

/** The named package and every workspace package it depends on (production dependencies). */
export function workspaceClosure(name: string): WorkspacePackage[] {
  const byName = new Map(workspacePackages().map((pkg) => [pkg.manifest.name, pkg]));
  const seen = new Map<string, WorkspacePackage>();
  const visit = (packageName: string): void => {
    const pkg = byName.get(packageName);
    if (!pkg || seen.has(packageName)) return;
    seen.set(packageName, pkg);
    for (const [dep, range] of Object.entries(pkg.manifest.dependencies ?? {})) {
      if (range.startsWith('workspace:')) visit(dep);
    }
  };
  visit(name);
  return [...seen.values()];
}

/** The CLI package: the one whose `bin` provides `walpurge`. */
export function cliPackage(): WorkspacePackage & { binPath: string } {
  for (const pkg of workspacePackages()) {
    const bin = pkg.manifest.bin;
    const binPath = typeof bin === 'string' ? bin : bin?.['walpurge'];
    if (binPath) return { ...pkg, binPath };
  }
  throw new Error('no workspace package has a `walpurge` bin');
}

/** Non-test TypeScript sources of services/* and packages/* (what ships). */
export function productionSources(): { path: string; text: string }[] {
  const files: { path: string; text: string }[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir)) {
      const full = join(dir, entry);
      if (entry === 'node_modules' || entry === 'dist') continue;
      if (statSync(full).isDirectory()) walk(full);
      else if (entry.endsWith('.ts') && !entry.endsWith('.test.ts') && !entry.endsWith('.d.ts')) {
        files.push({ path: relative(repoRoot, full), text: readFileSync(full, 'utf8') });
      }
    }
  };
  for (const top of ['services', 'packages']) {
    for (const pkg of readdirSync(repoPath(top))) {
      const src = repoPath(top, pkg, 'src');
      if (existsSync(src)) walk(src);
    }
  }
  return files;
}

/**
 * Every `${VAR}` / `${VAR:-default}` in a config's values (comments and keys do not count, as in
 * the loader), with whether it has a default. `$${` is a literal and no reference.
 */
export function configEnvReferences(text: string): { name: string; hasDefault: boolean }[] {
  const found: { name: string; hasDefault: boolean }[] = [];
  const visit = (value: unknown): void => {
    if (typeof value === 'string') {
      for (const match of value.matchAll(/\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}/g)) {
        if (match[1]) found.push({ name: match[1], hasDefault: match[2] !== undefined });
      }
    } else if (Array.isArray(value)) value.forEach(visit);
    else if (value && typeof value === 'object') Object.values(value).forEach(visit);
  };
  visit(parseYaml(text));
  return found;
}

/** The paths the ops server answers, read from its source (`path === '/…'`). */
export function opsServerPaths(): string[] {
  const source = readRepoFile('packages/core/src/ops-server.ts');
  return [...new Set([...source.matchAll(/path === '(\/[a-z]+)'/g)].map((match) => match[1] ?? ''))];
}

const JsonSchemaNode: z.ZodType<{
  properties?: Record<string, unknown>;
  items?: unknown;
  anyOf?: unknown[];
  oneOf?: unknown[];
}> = z.looseObject({
  properties: z.record(z.string(), z.unknown()).optional(),
  items: z.unknown().optional(),
  anyOf: z.array(z.unknown()).optional(),
  oneOf: z.array(z.unknown()).optional(),
});

/** The node under `segments`, through items and every branch of a union (kafka.ssl, kafka.sasl). */
function hasPath(node: unknown, segments: readonly string[]): boolean {
  if (segments.length === 0) return true;
  const parsed = JsonSchemaNode.safeParse(node);
  if (!parsed.success) return false;
  const { properties, items, anyOf, oneOf } = parsed.data;
  const [segment, ...rest] = segments as [string, ...string[]];
  const itemProperties = JsonSchemaNode.safeParse(items ?? {}).data?.properties;
  const next = properties?.[segment] ?? itemProperties?.[segment];
  if (next !== undefined && hasPath(next, rest)) return true;
  return [...(anyOf ?? []), ...(oneOf ?? [])].some((branch) => hasPath(branch, segments));
}

/**
 * Whether `section.key.sub` is an option of walpurge.yaml, per the JSON Schema generated from the
 * config's zod schema (packages/config/walpurge.schema.json; test/unit/config-docs keeps it current).
 */
export function configKeyExists(path: string): boolean {
  return hasPath(JSON.parse(readRepoFile('packages/config/walpurge.schema.json')), path.split('.'));
}

/** Top-level sections of walpurge.yaml that take nested options. */
const CONFIG_SECTIONS = [
  'database',
  'kafka',
  'redis',
  'flusher',
  'invalidator',
  'cdn',
  'http',
  'log',
  'rules',
  'inspect',
];

/**
 * Dotted config keys named in prose or comments (`kafka.partitions`, `<flusher.keyPrefix>`). Host names
 * like `kafka-bootstrap.kafka.svc`, paths like `deploy/k8s/base/walpurge.yaml` and file names like
 * `flusher.yaml` are not keys.
 */
export function configKeyReferences(text: string): string[] {
  const pattern = new RegExp(
    `(?<![\\w./-])(?:${CONFIG_SECTIONS.join('|')})\\.[A-Za-z]+(?:\\.[A-Za-z]+)*(?![\\w/-]|\\.\\w)`,
    'g',
  );
  return [...new Set([...text.matchAll(pattern)].map((match) => match[0]))].filter(
    (reference) => !/\.(ya?ml|json|[cm]?[jt]s|sql|md)$/.test(reference), // file names (flusher.yaml)
  );
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes. */
export function anchorOf(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, '')
    .replace(/ /g, '-');
}

/** The anchors of a Markdown document's headings. */
export function headingAnchors(markdown: string): string[] {
  return [...markdown.matchAll(/^#+ (.+)$/gm)].map((match) => anchorOf(match[1] ?? ''));
}
