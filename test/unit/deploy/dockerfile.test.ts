/**
 * deploy/Dockerfile cannot be built here (no Docker engine), so its stages are checked against the
 * workspace: what it copies exists, the packages it filters exist, the pnpm it runs is the pinned one,
 * the binary it starts is the CLI's, and the runtime stage is the locked-down one Kubernetes expects.
 */
import { existsSync, readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { HttpConfig } from '@walpurge/config';
import { copyArgs, execForm, parseDockerfile, type Stage } from './dockerfile.js';
import { cliCommand, cliEnvVars, parseInvocation } from './cli-spec.js';
import {
  cliPackage,
  opsServerPaths,
  productionSources,
  readRepoFile,
  repoPath,
  workspaceClosure,
  workspacePackages,
} from './workspace.js';

const dockerfile = parseDockerfile(readRepoFile('deploy/Dockerfile'));
const stages = dockerfile.stages;
const runtime = stages.at(-1) as Stage;
const instructions = (stage: Stage, keyword: string): string[] =>
  stage.instructions
    .filter((instruction) => instruction.keyword === keyword)
    .map((instruction) => instruction.args);
const allRuns = stages.flatMap((stage) => instructions(stage, 'RUN')).join('\n');

describe('deploy/Dockerfile', () => {
  it('builds in named stages on a Node LTS slim image, the runtime stage last', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    for (const stage of stages) {
      expect(stage.name, `stage FROM ${stage.image} is named`).toBeDefined();
      // Even Node majors are the LTS lines; slim Debian keeps apt for tini.
      expect(stage.image).toMatch(/^node:(\d*[02468])(\.\d+)*-(bookworm|trixie)-slim$/);
    }
    const major = Number(/^node:(\d+)/.exec(runtime.image)?.[1]);
    const engines = JSON.parse(readRepoFile('package.json')) as { engines?: { node?: string } };
    const minimum = Number(/(\d+)/.exec(engines.engines?.node ?? '0')?.[1]);
    expect(major, 'runtime Node satisfies engines.node').toBeGreaterThanOrEqual(minimum);
  });

  it('copies only paths that exist in the workspace, and from earlier stages', () => {
    const seen = new Set<string>();
    for (const stage of stages) {
      for (const args of instructions(stage, 'COPY')) {
        const { flags, sources } = copyArgs(args);
        const from = flags.get('from');
        if (from !== undefined) expect(seen, `COPY --from=${from}`).toContain(from);
        else for (const source of sources) expect(existsSync(repoPath(source)), `COPY ${source}`).toBe(true);
      }
      if (stage.name) seen.add(stage.name);
    }
  });

  it('copies every workspace package the CLI needs, and the lockfile inputs first', () => {
    const copied = stages.flatMap((stage) =>
      instructions(stage, 'COPY').flatMap((args) =>
        copyArgs(args).flags.has('from') ? [] : copyArgs(args).sources,
      ),
    );
    for (const file of ['package.json', 'pnpm-lock.yaml', 'pnpm-workspace.yaml', 'tsconfig.base.json'])
      expect(copied).toContain(file);
    const covered = (dir: string): boolean =>
      copied.some((source) => dir === source || dir.startsWith(`${source.replace(/\/$/, '')}/`));
    for (const pkg of workspaceClosure(cliPackage().manifest.name))
      expect(covered(pkg.dir), `${pkg.dir} is copied`).toBe(true);
    // Every workspace importer must be present for --frozen-lockfile to accept the lockfile.
    for (const pkg of workspacePackages()) {
      expect(
        covered(pkg.dir) || copied.includes(`${pkg.dir}/package.json`),
        `${pkg.dir}/package.json is copied`,
      ).toBe(true);
    }
  });

  it('runs the pinned pnpm on the lockfile and filters real workspace packages', () => {
    const manager =
      (JSON.parse(readRepoFile('package.json')) as { packageManager?: string }).packageManager ?? '';
    expect(manager).toMatch(/^pnpm@\d+\.\d+\.\d+/);
    // Corepack reads the version from package.json's packageManager; an explicit pnpm@x must match it.
    expect(allRuns).toMatch(/corepack (enable|install)/);
    for (const match of allRuns.matchAll(/pnpm@(\d[\w.-]*)/g))
      expect(`pnpm@${match[1]}`).toBe(manager.split('+')[0]);
    expect(allRuns).toMatch(/pnpm (fetch|install)[^\n]*/);
    expect(allRuns).toMatch(/pnpm install [^\n]*--frozen-lockfile/);
    const names = new Set(workspacePackages().map((pkg) => pkg.manifest.name));
    const filters = [...allRuns.matchAll(/--filter[= ]"?([^"\s]+)"?/g)].map((match) =>
      (match[1] ?? '').replace(/^\.\.\.|\.\.\.$/g, ''),
    );
    expect(filters.length).toBeGreaterThan(0);
    for (const filter of filters) expect(names, `--filter ${filter}`).toContain(filter);
  });

  it('deploys production dependencies with the pnpm deploy mode this workspace supports', () => {
    const deploy = /pnpm [^\n]*deploy[^\n]*/.exec(allRuns)?.[0] ?? '';
    expect(deploy, 'pnpm deploy').not.toBe('');
    expect(deploy).toMatch(/--prod\b/);
    // pnpm 10's default deploy needs inject-workspace-packages; without it only --legacy works.
    const workspace = parseYaml(readRepoFile('pnpm-workspace.yaml')) as Record<string, unknown>;
    const npmrc = existsSync(repoPath('.npmrc')) ? readRepoFile('.npmrc') : '';
    const injected =
      workspace['injectWorkspacePackages'] === true || /inject-workspace-packages\s*=\s*true/.test(npmrc);
    if (!injected) expect(deploy).toMatch(/--legacy\b/);
  });

  it('ships dist/ of the CLI and of every workspace package it imports, resolvable without source conditions', () => {
    for (const pkg of workspaceClosure(cliPackage().manifest.name)) {
      expect(pkg.manifest.files, `${pkg.manifest.name} files`).toContain('dist');
      const exported = JSON.stringify(pkg.manifest.exports ?? {});
      if (pkg.manifest.exports !== undefined)
        expect(exported, `${pkg.manifest.name} exports a dist default`).toMatch(/"default":"\.\/dist\//);
    }
  });

  it("ships the CLI's bin, and the bin starts a module tsc -b compiles from the CLI's sources", () => {
    const { dir, manifest, binPath } = cliPackage();
    const bin = `${dir}/${binPath.replace(/^\.\//, '')}`;
    expect(existsSync(repoPath(bin)), `${bin} exists (checked in, not built)`).toBe(true);
    // `pnpm deploy` packs a workspace package through its `files`: the bin must be in them.
    const topDir = binPath.replace(/^\.\//, '').split('/')[0] ?? '';
    expect(manifest.files, `${manifest.name} files include ${topDir}`).toContain(topDir);
    // The shim imports dist/…js; tsc maps src/X.ts → dist/X.js (rootDir src, outDir dist).
    const tsconfig = JSON.parse(readRepoFile(`${dir}/tsconfig.json`)) as {
      compilerOptions?: { rootDir?: string; outDir?: string };
    };
    const rootDir = (tsconfig.compilerOptions?.rootDir ?? 'src').replace(/^\.\//, '');
    const outDir = (tsconfig.compilerOptions?.outDir ?? 'dist').replace(/^\.\//, '');
    const binDir = posix.dirname(bin);
    const imports = [...readRepoFile(bin).matchAll(/import\s*(?:[^'"]*from\s*)?['"](\.[^'"]+)['"]/g)].map(
      (match) => posix.normalize(posix.join(binDir, match[1] ?? '')),
    );
    expect(imports.length, `${bin} imports the compiled entry point`).toBeGreaterThan(0);
    for (const target of imports) {
      expect(target, `${bin} imports from ${dir}/${outDir}`).toMatch(
        new RegExp(`^${dir}/${outDir}/.+\\.js$`),
      );
      const source = target.replace(`${dir}/${outDir}/`, `${dir}/${rootDir}/`).replace(/\.js$/, '.ts');
      expect(existsSync(repoPath(source)), `${target} is compiled from ${source}`).toBe(true);
    }
  });

  it('starts the CLI bin under tini as a numeric non-root user, exposing the ops port', () => {
    const entrypoint = execForm(instructions(runtime, 'ENTRYPOINT').at(-1) ?? '[]');
    expect(entrypoint[0]).toMatch(/tini$/);
    expect(instructions(runtime, 'RUN').join('\n')).toMatch(/apt-get install[^\n]*\btini\b/);
    expect(entrypoint).toContain('walpurge');
    // The wrapper installed as `walpurge` runs the CLI package's bin from the deployed /app.
    const { binPath } = cliPackage();
    const wrapper =
      instructions(runtime, 'RUN').find((args) => args.includes('/usr/local/bin/walpurge')) ?? '';
    expect(wrapper).toContain(`/app/${binPath.replace(/^\.\//, '')}`);
    expect(instructions(runtime, 'COPY').some((args) => copyArgs(args).dest === '/app')).toBe(true);
    const user = instructions(runtime, 'USER').at(-1) ?? '';
    expect(user, 'numeric so runAsNonRoot can verify it').toMatch(/^[1-9]\d*(:\d+)?$/);
    expect(instructions(runtime, 'EXPOSE')).toContain(String(HttpConfig.parse({}).port));
    const cmd = execForm(instructions(runtime, 'CMD').at(-1) ?? '[]');
    expect(cmd[0]).toBe('run');
  });

  it('sets only environment the runtime reads, and health-checks the ops server where the CLI serves it', () => {
    // ENV KEY=value KEY2=value2 (continuations already joined).
    const env = new Map(
      instructions(runtime, 'ENV').flatMap((args) =>
        [...args.matchAll(/([A-Za-z_]\w*)=(\S*)/g)].map((match) => [match[1] ?? '', match[2] ?? ''] as const),
      ),
    );
    expect(env.size).toBeGreaterThan(0);
    const known = cliEnvVars();
    const sources = productionSources();
    // Read by Node.js and the OS rather than by walpurge's sources.
    const platform = new Set(['NODE_ENV', 'TMPDIR']);
    for (const name of env.keys()) {
      const read = known.has(name) || platform.has(name) || sources.some(({ text }) => text.includes(name));
      expect(read, `ENV ${name} is read by nothing`).toBe(true);
    }
    // The only writable path under readOnlyRootFilesystem is /tmp.
    expect(env.get('TMPDIR')).toBe('/tmp');
    const cmd = parseInvocation(execForm(instructions(runtime, 'CMD').at(-1) ?? '[]'));
    if (env.has('WALPURGE_CONFIG')) expect(env.get('WALPURGE_CONFIG')).toBe(cmd.options['config']);
    // HEALTHCHECK: GET /healthz on the port `--http-port` would take from its env var, else the default.
    const healthcheck = instructions(runtime, 'HEALTHCHECK').at(-1) ?? '';
    expect(opsServerPaths()).toContain(/(\/[a-z]+)'/.exec(healthcheck)?.[1]);
    expect(healthcheck).toMatch(/\/healthz/);
    const portEnv = /process\.env\.(\w+) \|\| (\d+)/.exec(healthcheck);
    expect(portEnv?.[1], 'the env var of --http-port').toBe(cliCommand('run').options['http-port']?.env);
    expect(Number(portEnv?.[2]), 'the default http.port').toBe(HttpConfig.parse({}).port);
  });

  it('keeps build context lean with its own ignore file, without hiding what it copies', () => {
    const ignoreFile = repoPath('deploy/Dockerfile.dockerignore');
    expect(existsSync(ignoreFile)).toBe(true);
    const patterns = readFileSync(ignoreFile, 'utf8')
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== '' && !line.startsWith('#'));
    expect(patterns).toEqual(expect.arrayContaining(['**/node_modules', '**/dist', '.git']));
    const copied = stages.flatMap((stage) =>
      instructions(stage, 'COPY').flatMap((args) =>
        copyArgs(args).flags.has('from') ? [] : copyArgs(args).sources,
      ),
    );
    const excluded = (path: string): boolean => {
      let result = false;
      for (const pattern of patterns) {
        const negated = pattern.startsWith('!');
        const glob = negated ? pattern.slice(1) : pattern;
        const regex = new RegExp(
          `^${glob
            .replace(/[.+^${}()|[\]\\]/g, '\\$&')
            .replace(/\*\*\/?/g, '.*')
            .replace(/(?<!\.)\*/g, '[^/]*')}(/.*)?$`,
        );
        if (regex.test(path)) result = !negated;
      }
      return result;
    };
    for (const source of copied)
      expect(excluded(source), `${source} is excluded by the ignore file`).toBe(false);
    // The bin shim is checked in beside dist/, which the ignore file drops: it must still reach the build.
    const { dir, binPath } = cliPackage();
    const bin = `${dir}/${binPath.replace(/^\.\//, '')}`;
    expect(excluded(bin), `${bin} is excluded by the ignore file`).toBe(false);
    expect(excluded(`${dir}/dist/main.js`), 'a host-built dist/ is excluded').toBe(true);
  });
});
