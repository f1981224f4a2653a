/**
 * Metric names the code registers, found at test time: every `name: 'walpurge_…'` in the shipped
 * sources of services/ and packages/, plus the default process metrics createMetricsRegistry adds;
 * and the metrics every factory actually registers, with their real type and label names.
 */
import { createMetricsRegistry, type Registry } from '@walpurge/core';
import { createClientMetrics } from '../../../packages/client/src/read/metrics.js';
import { createKafkaTopicMetrics } from '../../../packages/kafka/src/topic-durability.js';
import { createFlusherMetrics } from '../../../services/flusher/src/metrics.js';
import { createCdnLaneMetrics } from '../../../services/invalidator/src/cdn-lane/lane-metrics.js';
import { createInvalidatorMetrics } from '../../../services/invalidator/src/metrics.js';
import { createCdnMetrics } from '../../../services/invalidator/src/targets/cdn/cdn-metrics.js';
import { createInspectMetrics } from '../../../services/inspector/src/metrics.js';
import { createKafkaSinkMetrics, createListenerMetrics } from '../../../services/listener/src/metrics.js';
import { productionSources } from './workspace.js';

export interface RegisteredMetric {
  name: string;
  type: string;
  file: string;
  labelNames: string[];
}

/** `labelNames: [...]` inside the same constructor call as `name: '…'` at `at`. */
function labelNamesAt(text: string, at: number): string[] {
  const end = text.indexOf('})', at);
  const call = text.slice(at, end < 0 ? undefined : end);
  const list = /labelNames:\s*\[([^\]]*)\]/.exec(call)?.[1] ?? '';
  return [...list.matchAll(/['"`]([A-Za-z_]\w*)['"`]/g)].map((match) => match[1] ?? '');
}

/** Metrics named in the shipped sources (`name: 'walpurge_…'`), found by reading them. */
export function scannedMetrics(sources = productionSources()): Map<string, RegisteredMetric> {
  const metrics = new Map<string, RegisteredMetric>();
  for (const { path, text } of sources) {
    for (const match of text.matchAll(
      /new (Counter|Gauge|Histogram|Summary)\(\s*\{\s*name:\s*['"`](walpurge_[a-z0-9_]+)['"`]/g,
    )) {
      const name = match[2] ?? '';
      metrics.set(name, {
        name,
        type: (match[1] ?? '').toLowerCase(),
        file: path,
        labelNames: labelNamesAt(text, match.index),
      });
    }
    // Names declared apart from the constructor call (e.g. in a table of definitions).
    for (const match of text.matchAll(/name:\s*['"`](walpurge_[a-z0-9_]+)['"`]/g)) {
      const name = match[1] ?? '';
      if (!metrics.has(name))
        metrics.set(name, { name, type: 'unknown', file: path, labelNames: labelNamesAt(text, match.index) });
    }
  }
  return metrics;
}

let registered: Promise<ReadonlyMap<string, RegisteredMetric>> | undefined;

/**
 * The scanned metrics, with the type and labels the factories really register, and the default
 * metrics. Computed once per test file (it reads every source and runs every metric factory).
 */
export function registeredMetrics(): Promise<ReadonlyMap<string, RegisteredMetric>> {
  registered ??= findRegisteredMetrics();
  return registered;
}

async function findRegisteredMetrics(): Promise<ReadonlyMap<string, RegisteredMetric>> {
  const sources = productionSources();
  const metrics = scannedMetrics(sources);
  // What the factories really register (default metrics included) wins over the source scan: its
  // type and label names are prom-client's own, even for metrics made through a helper.
  for (const metric of (await instantiatedMetrics()).values()) {
    const file =
      metrics.get(metric.name)?.file ??
      sources.find(({ text }) => text.includes(`'${metric.name}'`))?.path ??
      'prom-client default metrics';
    metrics.set(metric.name, { ...metric, file });
  }
  return metrics;
}

/** Series names Prometheus derives from a metric: histogram/summary `_bucket`, `_sum`, `_count`. */
export function baseMetricName(
  series: string,
  known: ReadonlyMap<string, RegisteredMetric>,
): string | undefined {
  if (known.has(series)) return series;
  const base = series.replace(/_(bucket|sum|count)$/, '');
  const metric = known.get(base);
  if (metric && (metric.type === 'histogram' || metric.type === 'summary' || metric.type === 'unknown'))
    return base;
  return undefined;
}

/** The label the ServiceMonitor makes of the pods' app.kubernetes.io/instance (podTargetLabels). */
export const INSTANCE_LABEL = 'app_kubernetes_io_instance';
/** The label the ServiceMonitor makes of the pods' app.kubernetes.io/part-of (walpurge on every pod). */
export const PART_OF_LABEL = 'app_kubernetes_io_part_of';

/**
 * Labels every series has without the code setting them: Prometheus' target labels, the ones the
 * ServiceMonitor relabels in (role, pod, the installation), and the histogram bucket label.
 */
export const TARGET_LABELS = new Set([
  INSTANCE_LABEL,
  PART_OF_LABEL,
  'namespace',
  'pod',
  'service',
  'job',
  'instance',
  'endpoint',
  'container',
  'role',
  'le',
  'quantile',
]);

/** Every metric factory of the shipped code, each run once on one registry (default metrics included). */
export function registryOfEveryMetric(): Registry {
  const registry = createMetricsRegistry();
  createListenerMetrics(registry);
  createKafkaSinkMetrics(registry);
  createKafkaTopicMetrics(registry);
  createInvalidatorMetrics(registry);
  createCdnLaneMetrics(registry);
  createCdnMetrics(registry);
  createFlusherMetrics(registry, { heldSeconds: () => 0 });
  createClientMetrics(registry);
  createInspectMetrics(registry);
  return registry;
}

export interface InstantiatedMetric {
  name: string;
  /** prom-client's type: counter, gauge, histogram or summary. */
  type: string;
  labelNames: string[];
}

/** What registryOfEveryMetric() registers, read from prom-client's own metric objects. */
export async function instantiatedMetrics(): Promise<Map<string, InstantiatedMetric>> {
  const registry = registryOfEveryMetric();
  const types = new Map(
    (await registry.getMetricsAsJSON()).map((metric) => [metric.name, String(metric.type)]),
  );
  const metrics = new Map<string, InstantiatedMetric>();
  for (const metric of registry.getMetricsAsArray()) {
    // prom-client keeps the constructor's labelNames on the object; its typings leave it out.
    const { name, labelNames = [] } = metric as unknown as { name: string; labelNames?: string[] };
    metrics.set(name, { name, type: types.get(name) ?? 'unknown', labelNames: [...labelNames] });
  }
  return metrics;
}
