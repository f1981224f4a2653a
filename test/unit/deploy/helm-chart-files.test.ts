/**
 * The Helm chart's copies of the alert rules and the dashboard (deploy/helm/walpurge/files) are what
 * `pnpm run deploy:sync` makes of their sources now, and the per-release rewrite of the alerts only
 * adds the instance matcher (and names the release's Service).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { IPrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule';
import { parse as parseYaml } from 'yaml';
import { sourceAlertRules } from './alert-source.js';
import {
  CHART_DIR,
  chartDashboardQuery,
  chartSharedFiles,
  DASHBOARD_SOURCE,
  INSTANCE_LABEL,
  isAcrossInstallations,
  PART_OF_LABEL,
  METRICS_SERVICE_PLACEHOLDER,
  RELEASE_PLACEHOLDER,
  releaseExpression,
} from './helm-chart-files.js';
import { parsePromql } from './promql.js';
import { readRepoFile, repoPath } from './workspace.js';

describe('deploy/helm/walpurge/files', () => {
  it.each([...chartSharedFiles()])('%s is up to date (run `pnpm run deploy:sync`)', (path, expected) => {
    expect(readFileSync(repoPath(path), 'utf8')).toBe(expected);
  });

  it('keeps every alert of the source, each expression changed only by the release matchers', () => {
    const exprs = sourceAlertRules().map((rule) => String(rule.expr));
    expect(exprs.length).toBeGreaterThan(0);
    for (const expr of exprs) {
      const before = parsePromql(expr);
      const after = parsePromql(releaseExpression(expr));
      expect(after.errors, expr).toEqual([]);
      expect(after.metrics, expr).toEqual(before.metrics);
      expect(after.grouping, expr).toEqual(before.grouping);
      expect(after.resultLabels, expr).toEqual(before.resultLabels);
      const strip = (facts: typeof after): string[] =>
        facts.matchers
          .filter((matcher) => matcher.label !== INSTANCE_LABEL && matcher.label !== 'service')
          .map((matcher) => JSON.stringify(matcher));
      expect(strip(after), expr).toEqual(strip(before));
    }
  });

  it("keeps the release in every alert's labels, so Alertmanager tells two releases apart", () => {
    const spec = parseYaml(
      readRepoFile(`${CHART_DIR}/files/prometheus-rules.yaml`),
    ) as IPrometheusRule['spec'];
    const rules = (spec.groups ?? []).flatMap((group) => group.rules ?? []);
    const across = rules.filter((rule) => isAcrossInstallations(String(rule.expr)));
    // Only the CloudFront free tier (per AWS account) adds up across installations, and unchanged.
    expect(across.map((rule) => rule.alert)).toEqual(['WalpurgeCloudFrontPathsOverFreeTier']);
    expect(across.map((rule) => String(rule.expr))).toEqual([
      'sum(increase(walpurge_cdn_cloudfront_paths_total[30d])) > 1000',
    ]);
    const exprs = rules.filter((rule) => !across.includes(rule)).map((rule) => String(rule.expr));
    expect(exprs.length).toBeGreaterThan(10);
    for (const expr of exprs) {
      const facts = parsePromql(expr);
      expect(facts.errors, expr).toEqual([]);
      // A `by (…)` must keep the instance label; no aggregation (undefined) keeps the series' labels,
      // and every selector matches the instance (the rewrite above).
      if (facts.resultLabels) expect(facts.resultLabels, expr).toContain(INSTANCE_LABEL);
      else expect(expr, expr).not.toMatch(/\bwithout\b/);
      for (const metric of facts.metrics)
        expect(
          facts.matchers.some((matcher) => matcher.metric === metric && matcher.label === INSTANCE_LABEL),
          `${metric} in ${expr}`,
        ).toBe(true);
    }
  });

  it("finds every release's series in the dashboard copy: no query selects the Kustomize Service", () => {
    type Variable = { name: string; type: string; definition?: string; query?: { query?: string } };
    type Dashboard = {
      templating: { list: Variable[] };
      panels: { targets?: { expr?: string }[] }[];
    };
    const source = JSON.parse(readRepoFile(DASHBOARD_SOURCE)) as Dashboard;
    const copy = JSON.parse(readRepoFile(`${CHART_DIR}/files/walpurge.json`)) as Dashboard;
    const queries = (dashboard: Dashboard): string[] => [
      ...dashboard.templating.list
        .filter((variable) => variable.type === 'query')
        .flatMap((variable) => [variable.definition ?? '', variable.query?.query ?? '']),
      ...dashboard.panels.flatMap((panel) => panel.targets ?? []).map((target) => target.expr ?? ''),
    ];
    expect(queries(copy)).toEqual(queries(source).map(chartDashboardQuery));
    for (const query of queries(copy)) expect(query).not.toMatch(/\bservice\s*=/);
    const instance = copy.templating.list.find((variable) => variable.name === 'instance');
    expect(instance?.definition).toMatch(new RegExp(`${PART_OF_LABEL}="walpurge".*\\b${INSTANCE_LABEL}\\)$`));
  });

  it.each([
    [
      'label_values(up{service="walpurge-metrics"}, namespace)',
      `label_values(up{${PART_OF_LABEL}="walpurge"}, namespace)`,
    ],
    ['sum(walpurge_a{service="other"})', 'sum(walpurge_a{service="other"})'],
  ])('makes the dashboard query %s release-independent', (query, expected) => {
    expect(chartDashboardQuery(query)).toBe(expected);
  });

  it.each([
    ['walpurge_a > 1', `walpurge_a{${INSTANCE_LABEL}="${RELEASE_PLACEHOLDER}"} > 1`],
    ['walpurge_a{} > 1', `walpurge_a{${INSTANCE_LABEL}="${RELEASE_PLACEHOLDER}"} > 1`],
    [
      'sum by (namespace) (rate(walpurge_b_total{outcome="failure"}[5m]))',
      `sum by (namespace) (rate(walpurge_b_total{${INSTANCE_LABEL}="${RELEASE_PLACEHOLDER}", outcome="failure"}[5m]))`,
    ],
    ['absent(walpurge_c)', `absent(walpurge_c{${INSTANCE_LABEL}="${RELEASE_PLACEHOLDER}"})`],
    [
      `walpurge_d{${INSTANCE_LABEL}=~".+"} / on (pod) walpurge_e`,
      `walpurge_d{${INSTANCE_LABEL}="${RELEASE_PLACEHOLDER}"} / on (pod) walpurge_e{${INSTANCE_LABEL}="${RELEASE_PLACEHOLDER}"}`,
    ],
    [
      'up{service="walpurge-metrics"} == 0',
      `up{${INSTANCE_LABEL}="${RELEASE_PLACEHOLDER}", service="${METRICS_SERVICE_PLACEHOLDER}"} == 0`,
    ],
  ])('rewrites %s for one release', (expression, expected) => {
    expect(releaseExpression(expression)).toBe(expected);
  });

  it('refuses an expression it cannot parse', () => {
    expect(() => releaseExpression('sum by (namespace (walpurge_a)')).toThrow(/PromQL syntax error/);
  });
});
