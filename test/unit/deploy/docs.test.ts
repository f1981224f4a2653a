/**
 * docs/deployment.md stays true: the files it points to exist, its SQL is the SQL the integration
 * test runs (deploy/compose/postgres-init.sql), every Secret the manifests reference is documented,
 * and every alert, metric and environment variable it names exists.
 */
import { existsSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import type { IJob } from 'kubernetes-models/batch/v1/Job';
import type { IEnvFromSource } from 'kubernetes-models/v1/EnvFromSource';
import { sourceAlertRules } from './alert-source.js';
import { renderKustomization, type Json, type K8sObject } from './kustomize.js';
import { validateAgainstSchema } from './k8s-schemas.js';
import { deployments, nameOf, walpurgeContainer } from './pod-spec.js';
import { baseMetricName, registeredMetrics } from './metrics-in-code.js';
import { parseInvocation } from './cli-spec.js';
import { parsePromql } from './promql.js';
import {
  configKeyExists,
  configKeyReferences,
  headingAnchors,
  productionSources,
  readRepoFile,
  repoPath,
} from './workspace.js';

const guide = readRepoFile('docs/deployment.md');

/** `a/{b,c}/d` → a/b/d, a/c/d */
function expandBraces(path: string): string[] {
  const match = /\{([^}]+)\}/.exec(path);
  if (!match) return [path];
  return (match[1] ?? '').split(',').flatMap((choice) => expandBraces(path.replace(match[0], choice)));
}

/** SQL statements of a text, comments dropped, whitespace collapsed, names made comparable. */
function privilegeStatements(sql: string): string[] {
  return sql
    .replace(/--[^\n]*/g, '')
    .split(';')
    .map((statement) => statement.replace(/\s+/g, ' ').trim())
    .filter((statement) => /^(CREATE ROLE|GRANT|CREATE PUBLICATION)/i.test(statement))
    .map((statement) =>
      statement
        .replace(/PASSWORD '[^']*'/, "PASSWORD '…'")
        // The compose stack names its publication after the demo; the guide uses the default.
        .replace(/CREATE PUBLICATION \w+/, 'CREATE PUBLICATION <publication>'),
    );
}

describe('docs/deployment.md', () => {
  it('points only at files that exist', () => {
    const paths = [...guide.matchAll(/`((?:deploy|docs|examples|test|packages|services)\/[^`\s]*)`/g)].map(
      (match) => match[1] ?? '',
    );
    expect(paths.length).toBeGreaterThan(5);
    for (const path of paths.flatMap(expandBraces)) expect(existsSync(repoPath(path)), path).toBe(true);
  });

  it('shows exactly the role and GRANTs that deploy/compose/postgres-init.sql runs (and the integration test proves)', () => {
    const blocks = [...guide.matchAll(/```sql\n([\s\S]*?)```/g)].map((match) => match[1] ?? '').join(';\n');
    const documented = privilegeStatements(blocks).sort();
    const tested = privilegeStatements(readRepoFile('deploy/compose/postgres-init.sql')).sort();
    expect(documented).toEqual(tested);
  });

  it('documents every Secret and key the manifests reference', () => {
    const rendered = [
      ...renderKustomization(repoPath('deploy/k8s/overlays/kafka')).objects,
      ...renderKustomization(repoPath('deploy/k8s/overlays/kafka'), { components: ['../../components/keda'] })
        .objects,
    ];
    const references: { secret: string; key?: string }[] = [];
    const visit = (node: Json): void => {
      if (Array.isArray(node)) return node.forEach(visit);
      if (!node || typeof node !== 'object') return;
      const secretKeyRef = node['secretKeyRef'];
      if (secretKeyRef && typeof secretKeyRef === 'object' && !Array.isArray(secretKeyRef)) {
        references.push({ secret: String(secretKeyRef['name']), key: String(secretKeyRef['key']) });
      }
      const secretRef = node['secretRef'];
      if (secretRef && typeof secretRef === 'object' && !Array.isArray(secretRef))
        references.push({ secret: String(secretRef['name']) });
      if (
        typeof node['parameter'] === 'string' &&
        typeof node['name'] === 'string' &&
        typeof node['key'] === 'string'
      ) {
        references.push({ secret: node['name'], key: node['key'] }); // KEDA secretTargetRef
      }
      Object.values(node).forEach(visit);
    };
    rendered.forEach((object) => visit(object));
    expect(references.length).toBeGreaterThan(0);
    for (const { secret, key } of references) {
      expect(guide, `Secret ${secret}`).toContain(`\`${secret}\``);
      if (key) expect(guide, `key ${key} of ${secret}`).toContain(`\`${key}\``);
    }
  });

  it('explains every alert', () => {
    const alerts = sourceAlertRules().map((alert) => String(alert.alert));
    expect(alerts.length).toBeGreaterThan(0);
    for (const alert of alerts) expect(guide, alert).toContain(`\`${alert}\``);
  });

  it('names only metrics the code registers and environment variables the code or its SDKs read', async () => {
    const metrics = await registeredMetrics();
    for (const match of guide.matchAll(/\bwalpurge_[a-z0-9_]+\b/g)) {
      expect(baseMetricName(match[0], metrics), `metric ${match[0]}`).toBeDefined();
    }
    const sources = productionSources();
    for (const match of guide.matchAll(/\b(CLOUDFLARE|FASTLY)_[A-Z_]+\b/g)) {
      expect(
        sources.some(({ text }) => text.includes(match[0])),
        match[0],
      ).toBe(true);
    }
  });

  it('names only config options walpurge.yaml has', () => {
    const keys = configKeyReferences(guide);
    expect(keys.length).toBeGreaterThan(5);
    for (const key of keys) expect(configKeyExists(key), `config key ${key}`).toBe(true);
  });

  it('shows only walpurge commands and flags the CLI accepts', () => {
    expectValidInvocations(guide, 3);
  });
});

/** `walpurge …` in inline code and shell blocks must parse with the CLI's own option specs. */
function expectValidInvocations(text: string, atLeast: number): void {
  const inline = [...text.matchAll(/`(walpurge [^`]+)`/g)].map((match) => match[1] ?? '');
  const blocks = [...text.matchAll(/```(?:sh|bash|shell)\n([\s\S]*?)```/g)].flatMap((match) =>
    (match[1] ?? '').split('\n').filter((line) => line.trim().startsWith('walpurge ')),
  );
  const invocations = [...inline, ...blocks];
  expect(invocations.length).toBeGreaterThan(atLeast);
  for (const line of invocations) {
    const argv = line
      .replace(/\s+#.*$/, '')
      .trim()
      .split(/\s+/)
      .slice(1);
    expect(() => parseInvocation(argv), line).not.toThrow();
  }
}

/** The runbook's list of metric renames, which other documents link to by its anchor. */
const METRIC_CHANGES_HEADING = '## Metric changes since 0.1.0';
const METRIC_CHANGES_ANCHOR = 'metric-changes-since-010';

describe('docs/runbook.md', () => {
  const runbook = readRepoFile('docs/runbook.md');

  it('keeps the metric changes section under its anchor, which the other documents link to', () => {
    expect(runbook).toContain(`\n${METRIC_CHANGES_HEADING}\n`);
    expect(headingAnchors(runbook)).toContain(METRIC_CHANGES_ANCHOR);
    for (const doc of ['docs/client.md', 'docs/configuration.md', 'docs/deployment.md']) {
      const links = [...readRepoFile(doc).matchAll(/\]\(runbook\.md#([\w-]+)\)/g)].map((match) => match[1]);
      expect(links, doc).toContain(METRIC_CHANGES_ANCHOR);
      for (const anchor of links)
        expect(headingAnchors(runbook), `${doc}: runbook.md#${anchor}`).toContain(anchor);
    }
  });

  describe('one-off Job for repairs (Running the CLI)', () => {
    const block = /```yaml\n(# walpurge-cli\.yaml[\s\S]*?)```/.exec(runbook)?.[1];
    const job = parseYaml(block ?? '') as IJob & K8sObject;

    it('is a valid Job running a command the CLI accepts', () => {
      expect(block).toBeDefined();
      expect(() => validateAgainstSchema(job)).not.toThrow();
      const [container] = job.spec?.template.spec?.containers ?? [];
      expect(() => parseInvocation(container?.args ?? [])).not.toThrow();
      // Not picked up by the metrics Service, the budgets or the alerts.
      expect(job.spec?.template.metadata?.labels?.['app.kubernetes.io/name']).not.toBe('walpurge');
    });

    it.each(['overlays/kafka', 'overlays/embedded'])(
      'has the listener pods’ credentials, config mount and writable /tmp; the jsonpath finds the ConfigMaps (%s)',
      (overlay) => {
        const { objects, generatedNames } = renderKustomization(repoPath('deploy/k8s', overlay));
        const listener = deployments(objects).find(
          (deployment) => nameOf(deployment) === 'walpurge-listener',
        );
        const pod = listener?.spec?.template.spec;
        const container = listener ? walpurgeContainer(listener) : undefined;
        const cli = job.spec?.template.spec?.containers[0];
        expect(cli?.env).toEqual(container?.env);
        const secretRefs = (refs: IEnvFromSource[] | undefined): unknown[] =>
          (refs ?? []).filter((ref) => ref.secretRef);
        expect(secretRefs(cli?.envFrom)).toEqual(secretRefs(container?.envFrom));
        for (const path of ['/etc/walpurge', '/tmp'])
          expect(cli?.volumeMounts?.map((mount) => mount.mountPath)).toContain(path);
        expect(job.spec?.template.spec?.serviceAccountName).toBe(pod?.serviceAccountName);
        // What the documented jsonpath reads: volumes[0] and envFrom[0].
        expect(pod?.volumes?.[0]?.configMap?.name).toBe(generatedNames.get('walpurge-config'));
        expect(container?.envFrom?.[0]?.configMapRef?.name).toBe(generatedNames.get('walpurge-env'));
        expect(runbook).toContain(
          '{.spec.template.spec.volumes[0].configMap.name} {.spec.template.spec.containers[0].envFrom[0].configMapRef.name}',
        );
      },
    );

    it('repairs confirm with --yes (no terminal in a Job) and purge --table checkpoints under /tmp', () => {
      const commands = [
        ...[...runbook.matchAll(/`(walpurge [^`]+)`/g)].map((match) => match[1] ?? ''),
        ...[...runbook.matchAll(/```sh\n([\s\S]*?)```/g)].flatMap((match) =>
          (match[1] ?? '').split('\n').filter((line) => line.startsWith('walpurge ')),
        ),
      ].map((line) => line.replace(/\s+#.*$/, ''));
      const repairs = commands.filter(
        (line) => /^walpurge (slot (drop|reset)|purge)\b/.test(line) && !line.includes('--dry-run'),
      );
      expect(repairs.length).toBeGreaterThan(4);
      for (const line of repairs) {
        // A slot reset's name alone, quoted in prose as the thing the next start asks for, is no call.
        if (line === 'walpurge slot reset --purge-all') continue;
        expect(line, line).toContain('--yes');
        if (line.includes('--table')) expect(line, line).toMatch(/--checkpoint \/tmp\//);
      }
    });
  });

  it('shows only walpurge commands and flags the CLI accepts', () => {
    expectValidInvocations(runbook, 15);
  });

  it('links only to documents and headings that exist', () => {
    const links = [...runbook.matchAll(/\]\(([\w.-]+\.md)?(?:#([\w-]+))?\)/g)];
    expect(links.length).toBeGreaterThan(10);
    for (const [link, file, anchor] of links) {
      const target = file ? readRepoFile(`docs/${file}`) : runbook;
      if (anchor) expect(headingAnchors(target), link).toContain(anchor);
    }
  });

  it('names only metrics the code registers, config options walpurge.yaml has and files that exist', async () => {
    const metrics = await registeredMetrics();
    const current = runbook.slice(0, runbook.indexOf(METRIC_CHANGES_HEADING));
    for (const match of current.matchAll(/\bwalpurge_[a-z0-9_]+\b/g))
      expect(baseMetricName(match[0], metrics), `metric ${match[0]}`).toBeDefined();
    for (const key of configKeyReferences(runbook))
      expect(configKeyExists(key), `config key ${key}`).toBe(true);
    for (const [, path] of runbook.matchAll(/`((?:deploy|docs)\/[^`\s]*)`/g))
      expect(existsSync(repoPath(path ?? '')), path).toBe(true);
  });

  it('gives PromQL that parses and selects registered metrics', async () => {
    const metrics = await registeredMetrics();
    const blocks = [...runbook.matchAll(/```promql\n([\s\S]*?)```/g)].flatMap((match) =>
      (match[1] ?? '').split('\n').filter((line) => line.trim() !== ''),
    );
    const inline = [...runbook.matchAll(/`([^`\n]*\(\s*walpurge_[^`\n]*)`/g)].map((match) =>
      (match[1] ?? '').replace(/\\\|/g, '|'),
    );
    expect(blocks.length).toBeGreaterThan(10);
    for (const expression of [...blocks, ...inline]) {
      const facts = parsePromql(expression);
      expect(facts.errors, expression).toEqual([]);
      for (const series of facts.metrics)
        expect(baseMetricName(series, metrics), `${series} in ${expression}`).toBeDefined();
    }
  });

  it('lists every rename since 0.1.0: the old names are gone, the replacements registered', async () => {
    const metrics = await registeredMetrics();
    const section = runbook.slice(runbook.indexOf(METRIC_CHANGES_HEADING));
    const rows = [...section.matchAll(/^\| `(walpurge_[a-z0-9_]+)(?:\{[^}]*\})?` +\| (.+) \|$/gm)];
    expect(rows.map((row) => row[1])).toEqual([
      'walpurge_invalidator_coalescing_ratio',
      'walpurge_flusher_coalescing_ratio',
      'walpurge_flusher_writes_accepted',
      'walpurge_client_hit_ratio',
    ]);
    for (const [, old, replacement] of rows) {
      expect(metrics.has(old ?? ''), `${old} is still registered`).toBe(false);
      const expression = /`([^`]+)`/.exec(replacement ?? '')?.[1]?.replace(/\\\|/g, '|') ?? '';
      const facts = parsePromql(expression);
      expect(facts.errors, expression).toEqual([]);
      for (const series of facts.metrics)
        expect(metrics.has(series), `${series} (replacing ${old})`).toBe(true);
    }
    expect([...metrics.keys()].filter((name) => name.startsWith('walpurge_process_'))).toEqual([]);

    // Nothing else in the repository still names an old metric (docs, manifests, examples, benchmarks).
    const old = [...rows.map((row) => row[1] ?? ''), 'walpurge_process_'];
    const files = [
      'README.md',
      ...readdirSync(repoPath('docs')).map((name) => `docs/${name}`),
      ...deployFiles('deploy'),
      ...deployFiles('examples'),
      ...deployFiles('test/bench'),
    ].filter((file) => /\.(md|ya?ml|json|ts)$/.test(file));
    for (const file of files) {
      const text =
        file === 'docs/runbook.md'
          ? runbook.slice(0, runbook.indexOf('## Metric changes'))
          : readRepoFile(file);
      for (const name of old) expect(text.includes(name), `${file} names ${name}`).toBe(false);
    }
  });
});

describe('docs/deployment.md, Helm section', () => {
  const section = /\n## Helm\n([\s\S]*?)\n## /.exec(guide)?.[1] ?? '';
  const rows = section.split('\n').filter((line) => line.startsWith('|'));
  const named = (key: string): boolean => section.includes(`\`${key}\``);
  /** A table row naming `group` names `key` too (per-role keys are listed in their group's row). */
  const inGroupRow = (group: string, key: string): boolean =>
    rows.some((row) => row.includes(`\`${group}\``) && row.includes(`\`${key}\``));

  it('documents every value of deploy/helm/walpurge/values.yaml', () => {
    const values = z
      .record(z.string(), z.unknown())
      .parse(parseYaml(readRepoFile('deploy/helm/walpurge/values.yaml')));
    expect(rows.length).toBeGreaterThan(10);
    for (const [key, value] of Object.entries(values)) {
      const children = value && typeof value === 'object' && !Array.isArray(value) ? Object.keys(value) : [];
      expect(named(key) || children.every((child) => named(`${key}.${child}`)), key).toBe(true);
      // config and kafka are walpurge.yaml's own sections (docs/configuration.md documents their
      // keys); the security contexts are Kubernetes objects passed through as they are.
      if (['config', 'kafka', 'podSecurityContext', 'securityContext'].includes(key)) continue;
      for (const child of children)
        expect(named(`${key}.${child}`) || inGroupRow(key, child), `${key}.${child}`).toBe(true);
    }
    expect(named('config.existingConfigMap')).toBe(true);
  });
});

describe('deploy/ and docker-compose.yml comments', () => {
  it('name only config options walpurge.yaml has', () => {
    const files = ['docker-compose.yml', ...deployFiles('deploy')];
    const found: string[] = [];
    for (const file of files) {
      for (const key of configKeyReferences(readRepoFile(file))) {
        found.push(key);
        expect(configKeyExists(key), `${file}: config key ${key}`).toBe(true);
      }
    }
    expect(found.length).toBeGreaterThan(3);
  });
});

function deployFiles(dir: string): string[] {
  return readdirSync(repoPath(dir), { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? deployFiles(`${dir}/${entry.name}`) : [`${dir}/${entry.name}`],
  );
}
