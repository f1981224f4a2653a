import { Registry, collectDefaultMetrics } from 'prom-client';

export { Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * One registry per process (not prom-client's global) so tests and embedded mode can run several
 * components without "metric already registered" clashes.
 */
export function createMetricsRegistry(
  options: { defaultMetrics?: boolean; labels?: Record<string, string> } = {},
): Registry {
  const registry = new Registry();
  if (options.labels) registry.setDefaultLabels(options.labels);
  // Unprefixed (process_cpu_seconds_total, nodejs_heap_size_used_bytes…): the names every Node.js
  // dashboard and alert already queries; the job/pod labels say which process they come from.
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  return registry;
}

/** Latency buckets in seconds covering 1 ms … 30 s, for commit→ack and commit→purge histograms. */
export const latencyBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
