/**
 * The Helm chart's copies of the alert rules and the dashboard (deploy/helm/walpurge/files) are what
 * `pnpm run deploy:sync` makes of their sources now, and the per-release rewrite of the alerts only
 * adds the instance matcher (and names the release's Service).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { IPrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule';
import {
  chartSharedFiles,
  INSTANCE_LABEL,
  METRICS_SERVICE_PLACEHOLDER,
  RELEASE_PLACEHOLDER,
  RULES_SOURCE,
  releaseExpression,
} from './helm-chart-files.js';
import { readYamlDocuments } from './kustomize.js';
import { parsePromql } from './promql.js';
import { repoPath } from './workspace.js';

describe('deploy/helm/walpurge/files', () => {
  it.each([...chartSharedFiles()])('%s is up to date (run `pnpm run deploy:sync`)', (path, expected) => {
    expect(readFileSync(repoPath(path), 'utf8')).toBe(expected);
  });

  it('keeps every alert of the source, each expression changed only by the release matchers', () => {
    const [source] = readYamlDocuments(repoPath(RULES_SOURCE)) as unknown as IPrometheusRule[];
    const exprs = (source?.spec.groups ?? [])
      .flatMap((group) => group.rules ?? [])
      .map((rule) => String(rule.expr));
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
