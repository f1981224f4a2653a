/**
 * Alerts (deploy/k8s/components/monitoring/prometheusrule.yaml) and the Grafana dashboard
 * (deploy/grafana/walpurge.json) query only metrics and labels the code registers, in PromQL that
 * Prometheus' own grammar accepts.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { IPrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule';
import { RULES_SOURCE, sourceAlertRules } from './alert-source.js';
import { readYamlDocuments, type K8sObject } from './kustomize.js';
import { validateAgainstSchema } from './k8s-schemas.js';
import {
  baseMetricName,
  INSTANCE_LABEL,
  PART_OF_LABEL,
  registeredMetrics,
  TARGET_LABELS,
  type RegisteredMetric,
} from './metrics-in-code.js';
import { expandGrafanaVariables, parsePromql } from './promql.js';
import { anchorOf, headingAnchors, productionSources, readRepoFile, repoPath } from './workspace.js';

let metrics: ReadonlyMap<string, RegisteredMetric>;
beforeAll(async () => {
  metrics = await registeredMetrics();
});

const sources = productionSources();
/** Label values the code sets are string literals in the package that registers the metric. */
function isLabelValueInPackage(value: string, registeredIn: string): boolean {
  const packageDir = registeredIn.split('/').slice(0, 2).join('/');
  return sources.some(
    ({ path, text }) =>
      path.startsWith(`${packageDir}/`) && (text.includes(`'${value}'`) || text.includes(`"${value}"`)),
  );
}

/**
 * Target labels that carry a resource's name (the Service's, the scrape job's): a kustomize namePrefix,
 * a Helm release or a hand-written scrape config renames them, so no query may match on them.
 */
const RESOURCE_NAME_LABELS = new Set(['service', 'job', 'endpoint']);

/** Labels of the result series: the aggregation's `by`, or the selected metrics' own labels. */
function outputLabels(expression: string): Set<string> {
  const facts = parsePromql(expression);
  if (facts.resultLabels) return new Set(facts.resultLabels);
  const own = facts.metrics.flatMap((series) => {
    const base = baseMetricName(series, metrics);
    return base ? (metrics.get(base)?.labelNames ?? []) : [];
  });
  return new Set([...own, ...TARGET_LABELS]);
}

/**
 * Every metric, label matcher, label value and grouping label of `expression` exists in the code;
 * returns the metrics used.
 */
function checkExpression(expression: string, where: string): string[] {
  const facts = parsePromql(expression);
  expect(facts.errors, `${where}: PromQL syntax error in ${expression}`).toEqual([]);
  const used: string[] = [];
  // Everything but Prometheus' own `up`: walpurge's metrics and the default process_/nodejs_ ones.
  if (facts.metrics.includes('up'))
    expect(
      facts.matchers.some(({ metric, label }) => metric === 'up' && label === PART_OF_LABEL),
      `${where}: up without {${PART_OF_LABEL}="walpurge"} counts every target Prometheus scrapes`,
    ).toBe(true);
  for (const series of facts.metrics.filter((name) => name !== 'up')) {
    const base = baseMetricName(series, metrics);
    expect(base, `${where}: ${series} is not registered by any service or package`).toBeDefined();
    if (base) used.push(base);
  }
  for (const { metric, label, op, value } of facts.matchers) {
    expect(
      RESOURCE_NAME_LABELS.has(label),
      `${where}: ${metric}{${label}${op}"${value}"} depends on a resource's name; select by the pods' labels`,
    ).toBe(false);
    // Prometheus' `up` exists for every target: only the pods' part-of label tells walpurge's apart.
    if (metric === 'up' && label === PART_OF_LABEL) expect(`${op}${value}`).toBe('=walpurge');
    const base = baseMetricName(metric, metrics);
    if (!base) continue;
    const own = metrics.get(base)?.labelNames ?? [];
    expect(
      new Set([...own, ...TARGET_LABELS]).has(label),
      `${where}: ${metric} has no label '${label}'`,
    ).toBe(true);
    // An exact value of a label the code sets must be one the code writes (`outcome="failed"` never matches).
    const registeredIn = metrics.get(base)?.file ?? '';
    if ((op === '=' || op === '!=') && own.includes(label) && !value.startsWith('$'))
      expect(
        isLabelValueInPackage(value, registeredIn),
        `${where}: ${metric}{${label}="${value}"}: ${registeredIn.split('/').slice(0, 2).join('/')} never sets that value`,
      ).toBe(true);
  }
  // `sum by (x)` on a metric without label x silently yields one series with no x.
  const labelsInScope = new Set([
    ...TARGET_LABELS,
    ...used.flatMap((base) => metrics.get(base)?.labelNames ?? []),
  ]);
  if (used.length > 0)
    for (const label of facts.grouping)
      expect(labelsInScope.has(label), `${where}: groups by '${label}', which its metrics do not have`).toBe(
        true,
      );
  return used;
}

/** `{{ $labels.x }}` (alert templates) or `{{x}}` (Grafana legends) must be labels of the result. */
function checkTemplateLabels(expression: string, template: string, pattern: RegExp, where: string): void {
  const available = outputLabels(expression);
  for (const match of template.matchAll(pattern))
    expect(available, `${where}: ${match[0]} is not a label of ${expression}`).toContain(match[1]);
}

/** Where runbook_url points: docs/runbook.md in the project's canonical repository. */
const RUNBOOK_URL = 'https://github.com/walpurge/walpurge/blob/main/docs/runbook.md';

/**
 * The labels that say which alert instance fires. A `by (…)` must keep namespace and the
 * installation; slot gauges also their slot and database. Without an aggregation the series' own
 * labels (all target labels included) stay.
 */
function missingIdentity(expression: string): string[] {
  const { resultLabels, metrics: used } = parsePromql(expression);
  if (!resultLabels) return [];
  const wanted = ['namespace', INSTANCE_LABEL];
  if (used.some((series) => metrics.get(series)?.labelNames.includes('slot')))
    wanted.push('slot', 'database');
  return wanted.filter((label) => !resultLabels.includes(label));
}

/** Alerts on a provider account's quota: the installations share it, so they are added up. */
const ACROSS_INSTALLATIONS = new Set(['WalpurgeCloudFrontPathsOverFreeTier']);

const Alert = z.strictObject({
  alert: z.string().regex(/^Walpurge[A-Z]\w+$/),
  expr: z.string(),
  for: z.string().regex(/^\d+[smh]$/),
  labels: z.strictObject({ severity: z.enum(['warning', 'critical']) }),
  annotations: z.strictObject({
    summary: z.string().min(10),
    description: z.string().min(10),
    runbook_url: z.string().startsWith(`${RUNBOOK_URL}#`),
  }),
});

describe('PrometheusRule alerts', () => {
  const file = repoPath(RULES_SOURCE);
  const [document] = readYamlDocuments(file) as K8sObject[];
  const rule = document as unknown as IPrometheusRule & K8sObject;

  it('is a valid PrometheusRule', () => {
    expect(() => validateAgainstSchema(rule)).not.toThrow();
  });

  const alerts = (rule.spec.groups ?? []).flatMap((group) => group.rules ?? []);

  it('has well-formed alerts with unique names', () => {
    expect(alerts.length).toBeGreaterThan(0);
    for (const alert of alerts) expect(() => Alert.parse(alert), String(alert.alert)).not.toThrow();
    const names = alerts.map((alert) => alert.alert);
    expect(new Set(names).size).toBe(names.length);
  });

  it('queries only metrics and labels the code registers', () => {
    for (const alert of alerts) checkExpression(String(alert.expr), String(alert.alert));
  });

  it('fires per installation (namespace and app_kubernetes_io_instance), per slot and database for slot metrics', () => {
    for (const alert of alerts.filter(({ alert }) => !ACROSS_INSTALLATIONS.has(String(alert))))
      expect(missingIdentity(String(alert.expr)), String(alert.alert)).toEqual([]);
    // A quota of the provider account adds every installation up, keeping no label at all.
    for (const alert of alerts.filter(({ alert }) => ACROSS_INSTALLATIONS.has(String(alert))))
      expect(parsePromql(String(alert.expr)).resultLabels, String(alert.alert)).toEqual([]);
    // The check itself: a namespace-wide aggregation, or one dropping the slot, is caught.
    expect(missingIdentity('max by (namespace) (walpurge_flusher_batch_held_seconds) > 1')).toEqual([
      INSTANCE_LABEL,
    ]);
    expect(
      missingIdentity(
        `max by (namespace, ${INSTANCE_LABEL}) (walpurge_listener_slot_retained_wal_bytes) > 1`,
      ),
    ).toEqual(['slot', 'database']);
  });

  it('links every alert to its own section of docs/runbook.md', () => {
    const anchors = headingAnchors(readRepoFile('docs/runbook.md'));
    for (const alert of alerts) {
      const url = String(alert.annotations?.['runbook_url']);
      expect(url, String(alert.alert)).toBe(`${RUNBOOK_URL}#${anchorOf(String(alert.alert))}`);
      expect(anchors, `docs/runbook.md has a heading ${String(alert.alert)}`).toContain(
        url.slice(url.indexOf('#') + 1),
      );
    }
  });

  it('templates only labels its expression keeps', () => {
    for (const alert of alerts) {
      const text = Object.values(alert.annotations ?? {}).join('\n');
      checkTemplateLabels(String(alert.expr), text, /\$labels\.([A-Za-z_]\w*)/g, String(alert.alert));
    }
  });

  it('covers WAL retained and left before invalidation, lags, dead letters, rejected and oversized events, write-behind age', () => {
    const used = alerts.flatMap((alert) => parsePromql(String(alert.expr)).metrics);
    const covered = (pattern: RegExp): boolean => used.some((name) => pattern.test(name));
    expect(covered(/retained_wal|wal_retained/), 'slot WAL retained').toBe(true);
    expect(covered(/replication_lag/), 'replication lag').toBe(true);
    expect(covered(/end_to_end|commit_to_purge/), 'end-to-end invalidation lag').toBe(true);
    expect(covered(/dead_letter|dlq/), 'dead letters').toBe(true);
    expect(covered(/oldest_pending/), 'write-behind oldest pending age').toBe(true);
    expect(covered(/slot_safe_wal/), 'slot WAL left before max_slot_wal_keep_size invalidates it').toBe(true);
    expect(covered(/rejected_events/), 'purges a target rejected for good').toBe(true);
    expect(covered(/oversized_events/), 'change events too big for one Kafka message').toBe(true);
  });

  it('alerts on CDN queue entries that are not change events (the inline lane deletes them unpurged)', () => {
    const undecodable = alerts.filter((alert) =>
      /walpurge_cdn_lane_entries_total\{[^}]*outcome="undecodable"/.test(String(alert.expr)),
    );
    expect(undecodable.map((alert) => alert.alert)).toEqual(['WalpurgeCdnQueueUndecodable']);
  });
});

const Target = z.looseObject({ expr: z.string(), refId: z.string(), legendFormat: z.string().optional() });
const Panel = z.looseObject({
  id: z.number(),
  type: z.string(),
  title: z.string(),
  gridPos: z.strictObject({ h: z.number(), w: z.number(), x: z.number(), y: z.number() }),
  targets: z.array(Target).optional(),
});
const Dashboard = z.looseObject({
  uid: z.string(),
  title: z.string(),
  schemaVersion: z.number(),
  templating: z.looseObject({ list: z.array(z.looseObject({ name: z.string(), type: z.string() })) }),
  panels: z.array(Panel),
});

describe('Grafana dashboard deploy/grafana/walpurge.json', () => {
  const dashboard = Dashboard.parse(JSON.parse(readRepoFile('deploy/grafana/walpurge.json')));

  it('has unique panel ids and no overlapping panels', () => {
    const ids = dashboard.panels.map((panel) => panel.id);
    expect(new Set(ids).size).toBe(ids.length);
    const cells = new Map<string, string>();
    for (const panel of dashboard.panels) {
      const { x, y, w, h } = panel.gridPos;
      expect(x + w, panel.title).toBeLessThanOrEqual(24);
      for (let row = y; row < y + h; row += 1) {
        for (let column = x; column < x + w; column += 1) {
          const key = `${row}:${column}`;
          expect(cells.get(key), `${panel.title} overlaps`).toBeUndefined();
          cells.set(key, panel.title);
        }
      }
    }
  });

  it('uses only variables it defines', () => {
    const defined = new Set(dashboard.templating.list.map((variable) => variable.name));
    const text = JSON.stringify(dashboard);
    for (const match of text.matchAll(/\$\{?([A-Za-z]\w*)/g)) expect(defined, match[0]).toContain(match[1]);
    expect(dashboard.templating.list.find((variable) => variable.name === 'datasource')?.type).toBe(
      'datasource',
    );
    // Query variables (label_values(selector, label)) select like panels do: registered metrics, or
    // walpurge's `up` by its part-of label, never by a resource's name.
    for (const variable of dashboard.templating.list.filter(({ type }) => type === 'query')) {
      const definition = typeof variable['definition'] === 'string' ? variable['definition'] : '';
      const selector = /^label_values\((\w+(?:\{[^}]*\})?), \w+\)$/.exec(definition)?.[1];
      expect(selector, `variable ${variable.name}: ${definition}`).toBeDefined();
      checkExpression(expandGrafanaVariables(selector ?? ''), `variable ${variable.name}`);
    }
  });

  it('queries only metrics and labels the code registers, including every metric an alert uses', () => {
    const used = new Set<string>();
    for (const panel of dashboard.panels) {
      for (const target of panel.targets ?? []) {
        for (const name of checkExpression(
          expandGrafanaVariables(target.expr),
          `${panel.title} ${target.refId}`,
        ))
          used.add(name);
      }
    }
    const alerted = sourceAlertRules()
      .flatMap((alert) => parsePromql(String(alert.expr)).metrics)
      .map((series) => baseMetricName(series, metrics))
      .filter((name): name is string => name !== undefined);
    for (const name of alerted) expect(used, `dashboard shows ${name}`).toContain(name);
  });

  it('shows one installation: an instance variable from app_kubernetes_io_instance filters every query', () => {
    const instance = dashboard.templating.list.find((variable) => variable.name === 'instance');
    expect(instance?.type).toBe('query');
    expect(String(instance?.['definition'])).toMatch(
      new RegExp(`^label_values\\(\\w+\\{[^}]*\\}, ${INSTANCE_LABEL}\\)$`),
    );
    // One installation and namespace at a time: panels sum and max over what the variables select.
    for (const variable of [instance, dashboard.templating.list.find(({ name }) => name === 'namespace')])
      expect([variable?.['multi'], variable?.['includeAll']], variable?.name).toEqual([false, false]);
    let selectors = 0;
    for (const panel of dashboard.panels) {
      for (const target of panel.targets ?? []) {
        const facts = parsePromql(target.expr.replace(/\$__\w+/g, '5m'));
        for (const metric of facts.metrics) {
          selectors += 1;
          const filters = facts.matchers
            .filter((matcher) => matcher.metric === metric)
            .map(({ label, op, value }) => `${label}${op}${value}`);
          expect(filters, `${panel.title} ${target.refId}: ${metric}`).toEqual(
            expect.arrayContaining(['namespace=$namespace', `${INSTANCE_LABEL}=$instance`]),
          );
        }
      }
    }
    expect(selectors).toBeGreaterThan(50);
  });

  it('names legend series only by labels their query keeps', () => {
    let legends = 0;
    for (const panel of dashboard.panels) {
      for (const target of panel.targets ?? []) {
        if (!target.legendFormat) continue;
        legends += 1;
        checkTemplateLabels(
          expandGrafanaVariables(target.expr),
          target.legendFormat,
          /\{\{\s*([A-Za-z_]\w*)\s*\}\}/g,
          `${panel.title} ${target.refId}`,
        );
      }
    }
    expect(legends).toBeGreaterThan(0);
  });
});

/**
 * Values every pod of a role reports alike (kept in the queue Redis or read from the queue, the slot
 * gauges of the active listener and, during a hand-over, its successor): a `sum` over pods multiplies
 * them by the pod count. They aggregate with max (or min).
 */
const REPORTED_BY_EVERY_POD = [
  'walpurge_flusher_queue_jobs',
  'walpurge_flusher_pending_rows',
  'walpurge_flusher_oldest_pending_age_seconds',
  'walpurge_flusher_queue_writes_accepted_total',
  'walpurge_flusher_queue_rows_written_total',
  'walpurge_cdn_queue_depth',
  'walpurge_cdn_queue_oldest_age_seconds',
  'walpurge_listener_slot_retained_wal_bytes',
  'walpurge_listener_slot_safe_wal_bytes',
  'walpurge_listener_replication_lag_seconds',
  'walpurge_listener_replication_lag_bytes',
  // A partition's previous consumer keeps its last value after a rebalance.
  'walpurge_invalidator_consumer_lag_messages',
];

describe('queue-wide and slot-wide values', () => {
  it('are never summed over pods in alerts, the dashboard or the runbook', async () => {
    for (const name of REPORTED_BY_EVERY_POD) expect(metrics.has(name), name).toBe(true);
    const dashboard = JSON.parse(readRepoFile('deploy/grafana/walpurge.json')) as unknown;
    const runbook = readRepoFile('docs/runbook.md');
    const expressions = [
      ...sourceAlertRules().map((alert) => String(alert.expr)),
      ...[...JSON.stringify(dashboard).matchAll(/"expr":"((?:[^"\\]|\\.)*)"/g)].map((match) =>
        expandGrafanaVariables(JSON.parse(`"${match[1] ?? ''}"`) as string),
      ),
      ...[...runbook.matchAll(/```promql\n([\s\S]*?)```/g)].flatMap((match) =>
        (match[1] ?? '').split('\n').filter((line) => line.trim() !== ''),
      ),
      ...[...runbook.matchAll(/`([^`\n]*\(\s*walpurge_[^`\n]*)`/g)].map((match) =>
        (match[1] ?? '').replace(/\\\|/g, '|'),
      ),
    ];
    expect(expressions.length).toBeGreaterThan(60);
    for (const expression of expressions) {
      const summed = parsePromql(expression).summed.map((series) => baseMetricName(series, metrics));
      for (const name of REPORTED_BY_EVERY_POD) expect(summed, expression).not.toContain(name);
    }
    // The check itself: a sum over pods is caught, a sum of per-partition maxima is not.
    expect(parsePromql('sum by (state) (walpurge_flusher_queue_jobs)').summed).toEqual([
      'walpurge_flusher_queue_jobs',
    ]);
    expect(
      parsePromql('sum by (topic) (max by (topic, partition) (walpurge_invalidator_consumer_lag_messages))')
        .summed,
    ).toEqual([]);
  });
});
