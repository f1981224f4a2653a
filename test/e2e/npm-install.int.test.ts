import { execFile } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { isBuiltin } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { promisify } from 'node:util';
import { init as initLexer, parse as parseImports } from 'es-module-lexer';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { z } from 'zod';
import {
  createIsolatedDatabase,
  deleteRedisKeys,
  freePort,
  signalAndWait,
  uniqueName,
  waitFor,
  type IsolatedDatabase,
} from '@walpurge/testing';
import { commands } from '../../packages/cli/src/cli.js';
import {
  spawnWalpurge,
  waitUntilReady,
  type WalpurgeProcess,
} from '../../packages/cli/src/testing/walpurge-process.js';
import { packPublishedPackages } from '../release/pack-published.js';
import {
  publishedPackages,
  readRootManifest,
  repoRoot,
  runtimeClosure,
} from '../release/workspace-packages.js';

/**
 * What a new user gets from npm: every published package packed by `pnpm pack` (workspace:* turned
 * into the release version), installed with plain npm into empty directories outside the workspace
 * (one app with everything, one with only the client and the peers README.md names), then the CLI
 * run (--version, --help, validate, an embedded `run` that purges a real change, quickstart) and the
 * client imported by ESM apps and type-checked by strict TypeScript apps. Third-party packages come
 * from the npm registry: 28-47 s in all with a warm npm cache on a busy 2-core machine (85 s at load
 * average 8); a cold cache adds 10-15 s to download ~110 packages.
 */
const services = inject('services');
const root = readRootManifest();
const published = publishedPackages();
const run = promisify(execFile);
const work = mkdtempSync(join(tmpdir(), 'walpurge-npm-install-'));
const tarballs = join(work, 'tarballs');
const app = join(work, 'app');
/** The documented client-only install: @walpurge/client (its internal packages) and ioredis, nothing else. */
const clientApp = join(work, 'client-app');
const fixtures = join(import.meta.dirname, 'npm-install');
const slot = uniqueName('npm_install');
const prefix = `${slot}:`;
let packs: PackResult[] = [];
let database: IsolatedDatabase;
let db: pg.Client;
let redis: Redis;
const children: WalpurgeProcess[] = [];

interface PackResult {
  name: string;
  version: string;
  filename: string;
  /** Paths inside the package, as npm installs them (without tar's `package/`). */
  files: string[];
}

/** What a tarball holds, read with tar: pnpm pack's --json report shares stdout with lifecycle output. */
async function readTarball(filename: string): Promise<PackResult> {
  const listing = await succeed('tar', ['-tzf', filename], tarballs);
  const manifest = await succeed('tar', ['-xzOf', filename, 'package/package.json'], tarballs);
  const { name, version } = z.object({ name: z.string(), version: z.string() }).parse(JSON.parse(manifest));
  const files = listing
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => line.replace(/^package\//, ''));
  return { name, version, filename, files };
}

interface Finished {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end; a failure is returned (code and output), not thrown. */
async function exec(
  command: string,
  args: string[],
  cwd: string,
  env: NodeJS.ProcessEnv = {},
): Promise<Finished> {
  try {
    const { stdout, stderr } = await run(command, args, {
      cwd,
      env: { ...process.env, ...env },
      timeout: 240_000,
      maxBuffer: 64 * 1024 * 1024,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: unknown; stdout?: string; stderr?: string; message: string };
    const code = typeof failed.code === 'number' ? failed.code : -1;
    return { code, stdout: failed.stdout ?? '', stderr: `${failed.stderr ?? ''}\n${failed.message}` };
  }
}

/** What README.md tells an application to install beside `@walpurge/client` (e.g. `ioredis@5`). */
function readmeClientInstall(): string[] {
  const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  const line = /^npm install @walpurge\/client ([^#\n]+)/m.exec(readme);
  if (!line?.[1]) throw new Error('README.md has no `npm install @walpurge/client …` line');
  return line[1].trim().split(/\s+/);
}

/** The tarballs of `name` and of every published package it depends on (the registry would resolve those). */
function tarballsOf(name: string): string[] {
  const needed = runtimeClosure([name]);
  return packs.filter((pack) => needed.has(pack.name)).map((pack) => pack.filename);
}

async function succeed(command: string, args: string[], cwd: string): Promise<string> {
  const result = await exec(command, args, cwd);
  if (result.code !== 0)
    throw new Error(`${command} ${args.join(' ')} failed (${result.code}):\n${result.stderr}`);
  return result.stdout;
}

/** `npx walpurge …` in the app directory, as the README tells users; --no-install: never the registry's. */
function walpurge(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Finished> {
  return exec('npx', ['--no-install', 'walpurge', ...args], app, {
    DATABASE_URL: database.url,
    REDIS_URL: services.redisUrl,
    ...env,
  });
}

/** Fails fast, with the fix, when this checkout has not been built (CI runs `tsc -b` before vitest). */
function assertBuilt(): void {
  for (const { dir, manifest } of published) {
    const targets = JSON.stringify(manifest.publishConfig?.['exports'] ?? {}).match(/\.\/dist\/[^"]+/g) ?? [];
    const missing = targets.find((target) => !existsSync(join(repoRoot, dir, target)));
    if (missing)
      throw new Error(`${dir}/${missing} is missing: build first with \`pnpm exec tsc -b\` (npm test does)`);
  }
}

const timings: string[] = [];
async function timed<T>(label: string, step: () => Promise<T>): Promise<T> {
  const started = performance.now();
  const result = await step();
  timings.push(`${label} ${Math.round(performance.now() - started)} ms`);
  return result;
}

beforeAll(async () => {
  assertBuilt();
  expect(relative(repoRoot, work).startsWith('..'), `${work} must be outside the workspace`).toBe(true);
  mkdirSync(tarballs);
  mkdirSync(app);
  mkdirSync(clientApp);
  await timed('pnpm pack', () => packPublishedPackages(tarballs));
  packs = await Promise.all(readdirSync(tarballs).map((name) => readTarball(join(tarballs, name))));

  for (const [dir, name] of [
    [app, 'walpurge-install-check'],
    [clientApp, 'walpurge-client-install-check'],
  ] as const)
    writeFileSync(
      join(dir, 'package.json'),
      JSON.stringify({ name, version: '1.0.0', private: true, type: 'module' }),
    );
  const devDependencies = root.devDependencies ?? {};
  const typescript = `typescript@${devDependencies['typescript'] ?? 'latest'}`;
  const nodeTypes = `@types/node@${devDependencies['@types/node'] ?? 'latest'}`;
  const pgTypes = `@types/pg@${devDependencies['@types/pg'] ?? 'latest'}`;
  const npmInstall = ['install', '--no-audit', '--no-fund', '--prefer-offline'];
  // The application's third-party packages exactly as README.md says to install them.
  const clientPeers = readmeClientInstall();
  await timed('npm install (both apps)', () =>
    Promise.all([
      succeed(
        'npm',
        [
          ...npmInstall,
          ...packs.map((pack) => pack.filename),
          ...clientPeers,
          typescript,
          nodeTypes,
          pgTypes,
        ],
        app,
      ),
      succeed(
        'npm',
        [...npmInstall, ...tarballsOf('@walpurge/client'), ...clientPeers, typescript, nodeTypes],
        clientApp,
      ),
    ]),
  );

  database = await createIsolatedDatabase(services.databaseUrl, 'npm_install');
  db = new pg.Client({ connectionString: database.url });
  await db.connect();
  await db.query(
    `CREATE TABLE items (id int PRIMARY KEY, sku text NOT NULL); ALTER TABLE items REPLICA IDENTITY FULL;
     INSERT INTO items VALUES (1, 'a')`,
  );
  redis = new Redis(services.redisUrl);
  writeFileSync(
    join(app, 'walpurge.yaml'),
    `transport: inline
database:
  url: \${DATABASE_URL}
  slot: ${slot}
  publication: ${slot}
redis:
  url: \${REDIS_URL}
  keyPrefix: '${prefix}'
log:
  level: warn
rules:
  - table: public.items
    redis:
      keys: ['item:{id}']
`,
  );
}, 300_000);

afterAll(async () => {
  for (const child of children) if (child.child.exitCode === null) await child.killNow();
  await db?.end().catch(() => {});
  if (redis) await deleteRedisKeys(redis, prefix).catch(() => {});
  redis?.disconnect();
  await database?.drop();
  rmSync(work, { recursive: true, force: true });
  console.log(`npm install check: ${timings.join(', ')}`);
});

describe('the packed tarballs', () => {
  it('are one per published package: built output, LICENSE (and the quickstart examples, the config schema) only', () => {
    expect(packs.map((pack) => pack.name).sort()).toEqual(published.map((pkg) => pkg.manifest.name).sort());
    for (const pack of packs) {
      const { files } = pack;
      expect(pack.version, pack.name).toBe(root.version);
      expect(files, pack.name).toContain('LICENSE');
      expect(files, pack.name).toContain('package.json');
      const unexpected = files.filter(
        (file) =>
          !/^(dist\/|bin\/walpurge\.js$|examples\/|walpurge\.schema\.json$|package\.json$|LICENSE$)/.test(
            file,
          ) || /(^|\/)(src|test-fixtures)\/|\.test\.|\.tsbuildinfo$|\.map$/.test(file),
      );
      expect(unexpected, pack.name).toEqual([]);
    }
  });

  it('walpurge carries the quickstart examples and @walpurge/config the JSON Schema', () => {
    const files = (name: string): string[] => packs.find((pack) => pack.name === name)?.files ?? [];
    expect(files('walpurge')).toEqual(
      expect.arrayContaining(['examples/walpurge.yaml', 'examples/demo/schema.sql']),
    );
    expect(files('@walpurge/config')).toContain('walpurge.schema.json');
  });

  it('the packaged example config points its editor schema at a file that is installed', () => {
    const example = join(app, 'node_modules', 'walpurge', 'examples', 'walpurge.yaml');
    const schema = /\$schema=(\S+)/.exec(readFileSync(example, 'utf8'))?.[1];
    expect(schema).toBeDefined();
    expect(existsSync(join(dirname(example), schema ?? '')), schema).toBe(true);
  });

  it('reference no source map (none is shipped, so a bundler would warn about each)', () => {
    for (const { manifest } of published) {
      const dir = join(app, 'node_modules', manifest.name);
      const referencing = readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter(
        (file) =>
          /\.(js|ts)$/.test(file) && readFileSync(join(dir, file), 'utf8').includes('sourceMappingURL'),
      );
      expect(referencing, manifest.name).toEqual([]);
    }
  });

  it('leave the application one ioredis, the one it installed (the client shares it as a peer)', () => {
    for (const dir of [app, clientApp]) {
      const copies = readdirSync(join(dir, 'node_modules'), { recursive: true, encoding: 'utf8' }).filter(
        (path) => /(^|\/)node_modules\/ioredis$|^ioredis$/.test(path),
      );
      expect(copies, dir).toEqual(['ioredis']);
    }
  });

  it('install from the tarballs alone: every walpurge package resolved from a file, none from the registry', () => {
    const lock = z
      .object({ packages: z.record(z.string(), z.object({ resolved: z.string().optional() }).loose()) })
      .parse(JSON.parse(readFileSync(join(app, 'package-lock.json'), 'utf8')));
    const ours = Object.entries(lock.packages).filter(([path]) =>
      /node_modules\/(walpurge|@walpurge\/[^/]+)$/.test(path),
    );
    expect(ours.map(([path]) => path.replace(/^.*node_modules\//, '')).sort()).toEqual(
      published.map((pkg) => pkg.manifest.name).sort(),
    );
    for (const [path, entry] of ours) expect(entry.resolved, path).toMatch(/^file:.*\.tgz$/);
  });

  it('carry manifests without workspace references, whose exports, types and bin exist', () => {
    for (const { manifest } of published) {
      const dir = join(app, 'node_modules', manifest.name);
      const text = readFileSync(join(dir, 'package.json'), 'utf8');
      expect(text, manifest.name).not.toContain('workspace:');
      expect(text, manifest.name).not.toContain('@walpurge/source');
      const installed = z
        .object({
          exports: z.record(z.string(), z.record(z.string(), z.string())),
          bin: z.record(z.string(), z.string()).optional(),
        })
        .parse(JSON.parse(text));
      const targets = [
        ...Object.values(installed.exports).flatMap((entry) => Object.values(entry)),
        ...Object.values(installed.bin ?? {}),
      ];
      for (const target of targets)
        expect(existsSync(join(dir, target)), `${manifest.name}: ${target}`).toBe(true);
    }
  });

  it('import at run time only packed files, node built-ins and their own dependencies (no dev-only package)', async () => {
    await initLexer;
    for (const { manifest } of published) {
      const dir = join(app, 'node_modules', manifest.name);
      const installed = z
        .object({
          dependencies: z.record(z.string(), z.string()).default({}),
          peerDependencies: z.record(z.string(), z.string()).default({}),
        })
        .parse(JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')));
      const declared = new Set([
        ...Object.keys(installed.dependencies),
        ...Object.keys(installed.peerDependencies),
      ]);
      const problems: string[] = [];
      for (const file of readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) =>
        f.endsWith('.js'),
      )) {
        const [imports] = parseImports(readFileSync(join(dir, file), 'utf8'));
        for (const { n: specifier } of imports) {
          if (!specifier || isBuiltin(specifier)) continue;
          if (specifier.startsWith('.')) {
            // A file left out of the tarball by `files` (dist/testing, …) must not be one the code loads.
            if (!existsSync(join(dir, dirname(file), specifier)))
              problems.push(`${file}: ${specifier} (not packed)`);
            continue;
          }
          const name = specifier
            .split('/')
            .slice(0, specifier.startsWith('@') ? 2 : 1)
            .join('/');
          if (!declared.has(name) && !isQuickstartLocalServers(manifest.name, file, name))
            problems.push(`${file}: ${specifier}`);
        }
      }
      expect(problems, manifest.name).toEqual([]);
    }
  });
});

/**
 * `walpurge quickstart` loads the test tooling's local PostgreSQL/Redis starters with a guarded
 * dynamic import, and says to set DATABASE_URL and REDIS_URL when it is not installed.
 */
function isQuickstartLocalServers(pkg: string, file: string, name: string): boolean {
  return (
    pkg === 'walpurge' &&
    file === join('dist', 'quickstart', 'local-stack.js') &&
    name === '@walpurge/testing'
  );
}

describe('npx walpurge, installed from npm', () => {
  it('--version prints the version of the package.json it was installed with', async () => {
    const result = await walpurge(['--version']);
    expect(result, result.stderr).toMatchObject({ code: 0, stdout: `${root.version}\n` });
    // Read at run time, not built in: change the installed manifest and the answer follows.
    const file = join(app, 'node_modules', 'walpurge', 'package.json');
    const original = readFileSync(file, 'utf8');
    try {
      writeFileSync(file, original.replace(`"version": "${root.version}"`, '"version": "9.8.7-installed"'));
      expect((await walpurge(['--version'])).stdout).toBe('9.8.7-installed\n');
    } finally {
      writeFileSync(file, original);
    }
  });

  it('--help lists every command', async () => {
    const result = await walpurge(['--help']);
    expect(result.code, result.stderr).toBe(0);
    for (const command of commands) expect(result.stdout).toContain(`  ${command.name}`);
  });

  it('validate checks the config and the live database; a typo is one located line, exit 1', async () => {
    const good = await walpurge(['validate', '--config', 'walpurge.yaml']);
    expect(good.code, `${good.stdout}\n${good.stderr}`).toBe(0);
    writeFileSync(join(app, 'typo.yaml'), 'databse:\n  url: postgres://x\n');
    const typo = await walpurge(['validate', '--config', 'typo.yaml']);
    expect(typo.code).toBe(1);
    expect(`${typo.stdout}${typo.stderr}`).toContain("typo.yaml:1:1: databse: unknown key 'databse'");
    expect(typo.stderr).not.toMatch(/^\s+at /m);
  });

  it('run (embedded) purges a committed change, then stops cleanly on SIGTERM', async () => {
    const port = await freePort();
    const running = spawnWalpurge(
      ['run', '--config', 'walpurge.yaml', '--role', 'all', '--http-port', String(port)],
      { DATABASE_URL: database.url, REDIS_URL: services.redisUrl },
      { installed: { bin: join(app, 'node_modules', '.bin', 'walpurge'), cwd: app } },
    );
    children.push(running);
    await waitUntilReady(port, running, 60_000);
    await redis.set(`${prefix}item:1`, 'cached');
    await db.query(`UPDATE items SET sku = 'b' WHERE id = 1`);
    await waitFor(
      'the purge of item:1',
      async () => ((await redis.exists(`${prefix}item:1`)) === 0 ? true : undefined),
      {
        timeoutMs: 20_000,
      },
    );
    expect(await signalAndWait(running.child, 'SIGTERM'), running.output()).toBe(0);
  });
});

describe('npx walpurge quickstart, installed from npm', () => {
  it("runs the packaged demo against the user's servers", async () => {
    // The packaged example rules, with a slot, publication and key prefix of their own.
    const example = readFileSync(join(app, 'node_modules', 'walpurge', 'examples', 'walpurge.yaml'), 'utf8');
    const own = example
      .replace('slot: walpurge_demo', `slot: ${slot}_demo`)
      .replace('publication: walpurge_demo', `publication: ${slot}_demo`)
      .replace('  url: ${REDIS_URL}\n', `  url: \${REDIS_URL}\n  keyPrefix: '${prefix}demo:'\n`);
    expect(own).toContain(`keyPrefix: '${prefix}demo:'`);
    writeFileSync(join(app, 'quickstart.yaml'), own);
    const result = await walpurge(['quickstart', '--config', 'quickstart.yaml', '--duration', '1', '--yes']);
    expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(0);
    expect(result.stdout).toContain('demo schema walpurge_demo ready (examples/demo/schema.sql)');
  });

  it("without its packaged examples, fails in one line and never reads the project's own examples/", async () => {
    // A package published with --ignore-scripts has no examples/; the repository's examples/ is then
    // four levels up from dist/quickstart, which in an install is the user's project.
    const packaged = join(app, 'node_modules', 'walpurge', 'examples');
    const aside = `${packaged}.aside`;
    mkdirSync(join(app, 'examples', 'demo'), { recursive: true });
    writeFileSync(join(app, 'examples', 'demo', 'schema.sql'), 'CREATE TABLE must_not_exist (id int);');
    writeFileSync(join(app, 'examples', 'walpurge.yaml'), readFileSync(join(packaged, 'walpurge.yaml')));
    renameSync(packaged, aside);
    try {
      const result = await walpurge(['quickstart', '--duration', '1', '--yes']);
      expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(1);
      expect(result.stderr).toContain('the walpurge package has no examples/');
      expect(result.stderr).not.toMatch(/^\s+at /m);
      const created = await db.query(`SELECT to_regclass('must_not_exist') AS t`);
      expect(created.rows[0]).toEqual({ t: null });
    } finally {
      renameSync(aside, packaged);
      rmSync(join(app, 'examples'), { recursive: true, force: true });
    }
  });

  it('without DATABASE_URL and REDIS_URL, says the local servers need a checkout (the test tooling is not installed)', async () => {
    const result = await walpurge(['quickstart', '--duration', '1', '--yes'], {
      DATABASE_URL: '',
      REDIS_URL: '',
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      'quickstart cannot start a local PostgreSQL and Redis from a production install',
    );
    expect(result.stderr).not.toMatch(/^\s+at /m);
  });
});

describe('@walpurge/client, installed from npm', () => {
  it('an ESM app imports the reads and HTTP entry points and reads through Redis', async () => {
    copyFileSync(join(fixtures, 'esm-app.mjs'), join(app, 'esm-app.mjs'));
    const result = await exec('node', ['esm-app.mjs'], app, {
      REDIS_URL: services.redisUrl,
      KEY_PREFIX: prefix,
    });
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({
      first: { id: 1, sku: 'from-loader' },
      second: { id: 1, sku: 'from-loader' },
      loads: 1,
      header: 'max-age=60',
    });
    expect(await redis.exists(`${prefix}esm-app:1`)).toBe(1);
  });

  it.each([
    // The shipped declarations are checked once (skipLibCheck off, the slow part); bundler resolution
    // then only has to find and use them.
    ['nodenext', { module: 'nodenext', moduleResolution: 'nodenext', skipLibCheck: false }],
    ['bundler', { module: 'esnext', moduleResolution: 'bundler', skipLibCheck: true }],
  ])(
    'a strict TypeScript app (moduleResolution %s) type-checks against every entry point',
    async (name, resolution) => {
      copyFileSync(join(fixtures, 'ts-app.ts'), join(app, 'ts-app.ts'));
      // The documented example, type-checked as the application code it says to copy.
      copyFileSync(join(repoRoot, 'examples', 'warm-critical-paths.ts'), join(app, 'warm-critical-paths.ts'));
      const tsconfig = `tsconfig.${name}.json`;
      writeFileSync(
        join(app, tsconfig),
        JSON.stringify({
          compilerOptions: {
            ...resolution,
            target: 'es2022',
            strict: true,
            noUncheckedIndexedAccess: true,
            exactOptionalPropertyTypes: true,
            noEmit: true,
            types: ['node'],
          },
          files: ['ts-app.ts', 'warm-critical-paths.ts'],
        }),
      );
      const result = await exec('npx', ['--no-install', 'tsc', '-p', tsconfig], app);
      expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(0);
    },
  );
});

describe('@walpurge/client alone, installed as README.md says (no CLI, no bullmq or pg)', () => {
  it('an ESM app reads through Redis', async () => {
    copyFileSync(join(fixtures, 'esm-app.mjs'), join(clientApp, 'esm-app.mjs'));
    const result = await exec('node', ['esm-app.mjs'], clientApp, {
      REDIS_URL: services.redisUrl,
      KEY_PREFIX: `${prefix}client-only:`,
    });
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ first: { id: 1, sku: 'from-loader' }, loads: 1 });
  });

  it('a strict TypeScript app using the reads and HTTP entry points type-checks, declarations included', async () => {
    copyFileSync(join(fixtures, 'ts-reads-app.ts'), join(clientApp, 'ts-reads-app.ts'));
    writeFileSync(
      join(clientApp, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'nodenext',
          moduleResolution: 'nodenext',
          target: 'es2022',
          strict: true,
          noUncheckedIndexedAccess: true,
          exactOptionalPropertyTypes: true,
          skipLibCheck: false,
          noEmit: true,
          types: ['node'],
        },
        files: ['ts-reads-app.ts'],
      }),
    );
    const result = await exec('npx', ['--no-install', 'tsc', '-p', 'tsconfig.json'], clientApp);
    expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(0);
  });

  it('importing /write without bullmq and pg fails with the error docs/client.md names', async () => {
    const result = await exec(
      'node',
      ['--input-type=module', '-e', "await import('@walpurge/client/write')"],
      clientApp,
    );
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/Cannot find package '(bullmq|pg)'/);
    const doc = readFileSync(join(repoRoot, 'docs', 'client.md'), 'utf8');
    expect(doc).toContain("`Cannot find package 'bullmq'` (or `'pg'`)");
  });
});
