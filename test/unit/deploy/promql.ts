/**
 * PromQL read with Prometheus' own grammar (@prometheus-io/lezer-promql): syntax errors, the metrics
 * an expression selects and the label names it matches or groups on.
 */
import { parser } from '@prometheus-io/lezer-promql';

export interface PromqlFacts {
  /** Positions of syntax errors (empty when the expression parses). */
  errors: number[];
  metrics: string[];
  /** Label names used in `{label="…"}` matchers, per metric. */
  matchers: { metric: string; label: string }[];
  /** Label names in `by (…)` / `without (…)` / `on (…)` / `ignoring (…)`. */
  grouping: string[];
}

/** Grafana variables replaced by values of the right kind, so the expression parses as PromQL. */
export function expandGrafanaVariables(expression: string): string {
  return expression
    .replace(/\$__(rate_interval|interval|range)\b/g, '5m')
    .replace(/\$\{?[A-Za-z_]\w*(:\w+)?\}?/g, 'x');
}

export function parsePromql(expression: string): PromqlFacts {
  const tree = parser.parse(expression);
  const facts: PromqlFacts = { errors: [], metrics: [], matchers: [], grouping: [] };
  let currentMetric: string | undefined;
  tree.iterate({
    enter(node) {
      if (node.type.isError) facts.errors.push(node.from);
      const text = expression.slice(node.from, node.to);
      if (node.name === 'VectorSelector') {
        const identifier = node.node.getChild('Identifier');
        currentMetric = identifier ? expression.slice(identifier.from, identifier.to) : undefined;
        if (currentMetric) facts.metrics.push(currentMetric);
      }
      if (node.name === 'LabelName') {
        const parent = node.node.parent?.name;
        if (parent === 'GroupingLabels') facts.grouping.push(text);
        else if (currentMetric && parent?.endsWith('LabelMatcher'))
          facts.matchers.push({ metric: currentMetric, label: text });
      }
      return undefined;
    },
    leave(node) {
      if (node.name === 'VectorSelector') currentMetric = undefined;
    },
  });
  facts.metrics = [...new Set(facts.metrics)];
  return facts;
}
