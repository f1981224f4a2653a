/**
 * Real Helm for the chart tests, without a helm binary: helm-java (Helm's Go library behind a Java
 * API, fetched from Maven Central once per machine by @walpurge/testing) driven by HelmRunner.java.
 *
 * One JVM runs every lint and template job of a matrix (JVM start and Helm's initialisation cost
 * seconds on a small machine), and results are cached by content (chart files, cases, runner,
 * helm-java version), so an unchanged chart renders from the cache.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ensureHelmJars, FETCH_TIMEOUT_MS, HELM_JAVA_VERSION, walpurgeCacheDir } from '@walpurge/testing';
import {
  asK8sObject,
  isObject,
  parseYamlDocuments,
  type JsonObject,
  type K8sObject,
} from '../../unit/deploy/kustomize.js';

const THIS_FILE = fileURLToPath(import.meta.url);
const RUNNER = join(dirname(THIS_FILE), 'HelmRunner.java');
const JVM_TIMEOUT_MS = 300_000;
/**
 * Longest renderHelmCases may take: a first run's Maven fetch (or the wait for another process's,
 * which gives up a minute after the fetch's own timeout), then the JVM. A test hook waiting for it
 * needs longer, so a slow fetch fails with Maven's log rather than a bare hook timeout.
 */
export const HELM_TIMEOUT_MS = FETCH_TIMEOUT_MS + 60_000 + JVM_TIMEOUT_MS + 60_000;

export interface HelmCase {
  /** Unique within one run; names the case in results and messages. */
  id: string;
  release: string;
  namespace: string;
  /** Like `-f values.yaml`: merged over the chart's values.yaml by Helm. */
  values: JsonObject;
}

export interface HelmCaseResult {
  /** `helm template` output, or undefined when it failed (see templateError). */
  manifest?: string;
  templateError?: string;
  /**
   * `helm lint --strict` of the chart with this case's values as its values.yaml. Lint does not fail
   * on a template's `fail` (it only logs it): `failures` holds those log lines.
   */
  lint: { failed: boolean; messages: string[]; failures: string[] } | { error: string };
}

export interface HelmRender extends HelmCaseResult {
  objects: K8sObject[];
}

const CachedResults = z.record(
  z.string(),
  z.object({
    manifest: z.string().optional(),
    templateError: z.string().optional(),
    lint: z.union([
      z.object({ failed: z.boolean(), messages: z.array(z.string()), failures: z.array(z.string()) }),
      z.object({ error: z.string() }),
    ]),
  }),
);

/** Helm's coalescing of a values file over values.yaml: maps merge, `null` deletes, the rest replaces. */
export function mergeValues(base: JsonObject, override: JsonObject): JsonObject {
  const result: JsonObject = structuredClone(base);
  for (const [key, value] of Object.entries(override)) {
    const current = result[key];
    if (value === null) delete result[key];
    else if (isObject(value) && isObject(current)) result[key] = mergeValues(current, value);
    else result[key] = structuredClone(value);
  }
  return result;
}

function chartFiles(dir: string, root = dir): { path: string; text: string }[] {
  return readdirSync(dir)
    .sort()
    .flatMap((entry) => {
      const path = join(dir, entry);
      return statSync(path).isDirectory()
        ? chartFiles(path, root)
        : [{ path: relative(root, path), text: readFileSync(path, 'utf8') }];
    });
}

function cacheKey(chartDir: string, cases: readonly HelmCase[]): string {
  const hash = createHash('sha256');
  // This file too: how results are read from the runner's output is part of what is cached.
  hash
    .update(`helm-java ${HELM_JAVA_VERSION}\n`)
    .update(readFileSync(RUNNER))
    .update(readFileSync(THIS_FILE));
  for (const { path, text } of chartFiles(chartDir)) hash.update(`\0${path}\0${text}`);
  hash.update(JSON.stringify(cases));
  return hash.digest('hex').slice(0, 32);
}

/** The runner's stderr split at its "walpurge-helm-job N" markers: job index → lines it logged. */
function jobLogs(stderr: string): Map<number, string[]> {
  const logs = new Map<number, string[]>();
  let current: string[] | undefined;
  for (const line of stderr.split('\n')) {
    const marker = /^walpurge-helm-job (\d+)$/.exec(line);
    if (marker) logs.set(Number(marker[1]), (current = []));
    else current?.push(line);
  }
  return logs;
}

/** Lints and templates every case in one JVM; results by case id. */
async function runJvm(chartDir: string, cases: readonly HelmCase[]): Promise<Record<string, HelmCaseResult>> {
  const libs = await ensureHelmJars();
  const work = mkdtempSync(join(tmpdir(), 'walpurge-helm-'));
  try {
    const baseValues = parseYaml(readFileSync(join(chartDir, 'values.yaml'), 'utf8')) as JsonObject;
    const jobs: string[] = [];
    cases.forEach((helmCase, index) => {
      const dir = join(work, String(index));
      mkdirSync(dir);
      writeFileSync(join(dir, 'values.yaml'), JSON.stringify(helmCase.values));
      // helm lint takes no values file here: lint a copy whose values.yaml has the case merged in.
      const chart = join(dir, 'chart');
      cpSync(chartDir, chart, { recursive: true });
      // JSON, which Helm's YAML 1.1 reader takes as is (a YAML dump would leave keys like `on` bare).
      // Lint renders as the release `test-release`: give it the case's full name for the release
      // `walpurge`, the one release whose write-behind queue has a default (the chart refuses others).
      const lintValues = mergeValues(baseValues, helmCase.values);
      if (helmCase.release === 'walpurge' && !lintValues['fullnameOverride'])
        lintValues['fullnameOverride'] = 'walpurge';
      writeFileSync(join(chart, 'values.yaml'), JSON.stringify(lintValues));
      jobs.push(['lint', chart, join(dir, 'lint.txt')].join('\t'));
      jobs.push(
        [
          'template',
          chartDir,
          helmCase.release,
          helmCase.namespace,
          join(dir, 'values.yaml'),
          join(dir, 'out.yaml'),
        ].join('\t'),
      );
    });
    writeFileSync(join(work, 'jobs.tsv'), `${jobs.join('\n')}\n`);
    const { stderr } = await promisify(execFile)(
      'java',
      ['-cp', `${libs}/*`, RUNNER, join(work, 'jobs.tsv')],
      { timeout: JVM_TIMEOUT_MS, maxBuffer: 64 * 1024 * 1024 },
    );
    const logs = jobLogs(stderr);
    const results: Record<string, HelmCaseResult> = {};
    cases.forEach((helmCase, index) => {
      const dir = join(work, String(index));
      const read = (file: string): string | undefined =>
        existsSync(join(dir, file)) ? readFileSync(join(dir, file), 'utf8') : undefined;
      const lintText = read('lint.txt');
      const [status, ...messages] = (lintText ?? '').split('\n').filter((line) => line !== '');
      results[helmCase.id] = {
        manifest: read('out.yaml'),
        templateError: read('out.yaml.error'),
        lint:
          lintText === undefined
            ? { error: read('lint.txt.error') ?? 'no lint result' }
            : {
                failed: status !== 'failed=false',
                messages,
                // Lint jobs are the even ones (lint, then template, per case).
                failures: (logs.get(index * 2) ?? []).filter((line) => line.includes('[INFO] Fail:')),
              },
      };
    });
    return results;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * `helm lint --strict` and `helm template` for every case, rendered objects parsed. Cached by content
 * in $WALPURGE_CACHE_DIR/helm-renders (delete it to force a render).
 */
export async function renderHelmCases(
  chartDir: string,
  cases: readonly HelmCase[],
): Promise<Map<string, HelmRender>> {
  const ids = cases.map((helmCase) => helmCase.id);
  if (new Set(ids).size !== ids.length) throw new Error('helm cases need unique ids');
  const cacheDir = join(walpurgeCacheDir(), 'helm-renders');
  const cacheFile = join(cacheDir, `${cacheKey(chartDir, cases)}.json`);
  let results: Record<string, HelmCaseResult>;
  if (existsSync(cacheFile)) {
    results = CachedResults.parse(JSON.parse(readFileSync(cacheFile, 'utf8')));
  } else {
    results = await runJvm(chartDir, cases);
    mkdirSync(cacheDir, { recursive: true });
    // Write then rename: a concurrent reader sees the whole file or none.
    const staging = `${cacheFile}.${process.pid}.tmp`;
    writeFileSync(staging, JSON.stringify(results));
    renameSync(staging, cacheFile);
  }
  return new Map(
    cases.map((helmCase) => {
      const result = results[helmCase.id];
      if (!result) throw new Error(`no helm result for ${helmCase.id}`);
      const objects = result.manifest
        ? parseYamlDocuments(result.manifest, `helm template (${helmCase.id})`).map((value) =>
            asK8sObject(value, `helm template (${helmCase.id})`),
          )
        : [];
      return [helmCase.id, { ...result, objects }];
    }),
  );
}
