/**
 * The alert rules as written once, for Kustomize (the Helm chart's copy is generated from them):
 * the file and its alerts, for the tests that check them against the code, the docs and the chart.
 */
import type { IPrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule';
import { readYamlDocuments } from './kustomize.js';
import { repoPath } from './workspace.js';

export const RULES_SOURCE = 'deploy/k8s/components/monitoring/prometheusrule.yaml';

export type AlertRule = NonNullable<NonNullable<IPrometheusRule['spec']['groups']>[number]['rules']>[number];

/** Every rule of every group of the source PrometheusRule, in file order. */
export function sourceAlertRules(): AlertRule[] {
  const [rule] = readYamlDocuments(repoPath(RULES_SOURCE)) as unknown as IPrometheusRule[];
  return (rule?.spec.groups ?? []).flatMap((group) => group.rules ?? []);
}
