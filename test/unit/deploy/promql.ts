/**
 * PromQL read with Prometheus' own grammar (@prometheus-io/lezer-promql): syntax errors, the metrics
 * an expression selects, the label matchers it applies and the label names it groups on.
 */
import { parser } from '@prometheus-io/lezer-promql';

/** lezer's SyntaxNode, reached through the parser (@lezer/common is not a direct dependency). */
type SyntaxNode = ReturnType<typeof parser.parse>['topNode'];

export interface LabelMatcher {
  metric: string;
  label: string;
  /** `=`, `!=`, `=~` or `!~`. */
  op: string;
  /** The matched value, quotes removed. */
  value: string;
}

export interface PromqlFacts {
  /** Positions of syntax errors (empty when the expression parses). */
  errors: number[];
  metrics: string[];
  /** `{label op "value"}` matchers, per metric. */
  matchers: LabelMatcher[];
  /** Label names in `by (…)` / `without (…)` / `on (…)` / `ignoring (…)`. */
  grouping: string[];
  /**
   * The labels of the expression's result series when an aggregation decides them (`sum by (a, b)`
   * → [a, b]; `sum(…)` → []); undefined when the result keeps the selected series' own labels.
   */
  resultLabels: string[] | undefined;
  /** Metrics whose nearest enclosing aggregation is `sum` or `count` (adds up what pods report). */
  summed: string[];
}

/** Grafana variables replaced by values of the right kind, so the expression parses as PromQL. */
export function expandGrafanaVariables(expression: string): string {
  return expression
    .replace(/\$__(rate_interval|interval|range)\b/g, '5m')
    .replace(/\$\{?[A-Za-z_]\w*(:\w+)?\}?/g, 'x');
}

function unquote(literal: string): string {
  if (literal.startsWith('`')) return literal.slice(1, -1);
  return JSON.parse(
    literal.startsWith("'") ? `"${literal.slice(1, -1).replace(/"/g, '\\"')}"` : literal,
  ) as string;
}

/**
 * Follows the vector side of the expression from its root: through parentheses, comparisons with a
 * scalar, and functions, to the first aggregation (which decides the labels) or selector (which keeps
 * its own).
 */
function resultLabels(node: SyntaxNode | null, text: (node: SyntaxNode) => string): string[] | undefined {
  if (!node) return undefined;
  switch (node.name) {
    case 'PromQL':
    case 'ParenExpr':
      return resultLabels(childExpressions(node)[0] ?? null, text);
    case 'BinaryExpr': {
      // `vector > scalar` keeps the vector's labels; with two vectors the left side's (one-to-one).
      const left = node.firstChild;
      const leftIsNumber = left?.name === 'NumberDurationLiteral';
      return resultLabels(leftIsNumber ? (node.lastChild ?? null) : left, text);
    }
    case 'FunctionCall': {
      const body = node.getChild('FunctionCallBody');
      // rate(v), histogram_quantile(φ, v)…: the vector is the last argument; `le` is consumed.
      const vector = (body ? childExpressions(body) : []).at(-1) ?? null;
      return resultLabels(vector, text)?.filter((label) => label !== 'le');
    }
    case 'AggregateExpr': {
      const modifier = node.getChild('AggregateModifier');
      if (!modifier) return [];
      const grouping = modifier.getChild('GroupingLabels');
      const names = grouping ? grouping.getChildren('LabelName').map(text) : [];
      return modifier.getChild('By') ? names : undefined;
    }
    default:
      return undefined;
  }
}

/** The operator (sum, max…) of the innermost aggregation around `node`, if any. */
function nearestAggregation(node: SyntaxNode, text: (node: SyntaxNode) => string): string | undefined {
  for (let parent = node.parent; parent; parent = parent.parent) {
    if (parent.name === 'AggregateExpr') {
      const op = parent.getChild('AggregateOp');
      return op ? text(op).toLowerCase() : undefined;
    }
  }
  return undefined;
}

/** Children of a node that are expressions (not punctuation or the function's name). */
function childExpressions(node: SyntaxNode): SyntaxNode[] {
  const children: SyntaxNode[] = [];
  for (let child = node.firstChild; child; child = child.nextSibling) {
    if (!['(', ')', ','].includes(child.name)) children.push(child);
  }
  return children;
}

export function parsePromql(expression: string): PromqlFacts {
  const tree = parser.parse(expression);
  const text = (node: SyntaxNode): string => expression.slice(node.from, node.to);
  const facts: PromqlFacts = {
    errors: [],
    metrics: [],
    matchers: [],
    grouping: [],
    resultLabels: undefined,
    summed: [],
  };
  let currentMetric: string | undefined;
  tree.iterate({
    enter(ref) {
      const node = ref.node;
      if (ref.type.isError) facts.errors.push(ref.from);
      if (ref.name === 'VectorSelector') {
        const identifier = node.getChild('Identifier');
        currentMetric = identifier ? text(identifier) : undefined;
        if (currentMetric) facts.metrics.push(currentMetric);
        const aggregation = nearestAggregation(node, text);
        if (currentMetric && (aggregation === 'sum' || aggregation === 'count'))
          facts.summed.push(currentMetric);
      }
      if (ref.name === 'LabelName' && node.parent?.name === 'GroupingLabels') facts.grouping.push(text(node));
      if (ref.name.endsWith('LabelMatcher') && currentMetric) {
        const label = node.getChild('LabelName');
        const op = node.getChild('MatchOp');
        const value = node.getChild('StringLiteral');
        if (label && op && value)
          facts.matchers.push({
            metric: currentMetric,
            label: text(label),
            op: text(op),
            value: unquote(text(value)),
          });
      }
      return undefined;
    },
    leave(ref) {
      if (ref.name === 'VectorSelector') currentMetric = undefined;
    },
  });
  facts.metrics = [...new Set(facts.metrics)];
  facts.resultLabels = facts.errors.length === 0 ? resultLabels(tree.topNode, text) : undefined;
  return facts;
}

/** What `editSelectors` may do to one `{label op "value"}` of a selector. */
export type MatcherEdit = (matcher: LabelMatcher) => string | undefined;

export interface SelectorEdits {
  /** Sets `label="value"` on every vector selector: replaces the value where the label is matched
   * already, adds the matcher otherwise. */
  setOnEverySelector?: { label: string; value: string };
  /** Returns a new value for a matcher, or undefined to keep it. */
  replaceValue?: MatcherEdit;
  /** Returns a whole new matcher (`label="value"`) for a matcher, or undefined to keep it. */
  replaceMatcher?: MatcherEdit;
}

/**
 * Rewrites the vector selectors of `expression` through Prometheus' grammar (never by matching the
 * text): each edit is a splice at a position the parser reports, so everything else (functions,
 * grouping, comparisons, whitespace) stays byte for byte. Throws on a syntax error.
 */
export function editSelectors(expression: string, edits: SelectorEdits): string {
  const tree = parser.parse(expression);
  const text = (node: SyntaxNode): string => expression.slice(node.from, node.to);
  const splices: { from: number; to: number; insert: string }[] = [];
  const quoted = (value: string): string => JSON.stringify(value);
  tree.iterate({
    enter(ref) {
      if (ref.type.isError) throw new Error(`PromQL syntax error at ${ref.from}: ${expression}`);
      if (ref.name !== 'VectorSelector') return undefined;
      const node = ref.node;
      const identifier = node.getChild('Identifier');
      const metric = identifier ? text(identifier) : '';
      const block = node.getChild('LabelMatchers');
      let labelSet = false;
      const matchers: SyntaxNode[] = [];
      for (let child = block?.firstChild ?? null; child; child = child.nextSibling)
        if (child.name.endsWith('LabelMatcher')) matchers.push(child);
      for (const child of matchers) {
        const label = child.getChild('LabelName');
        const op = child.getChild('MatchOp');
        const value = child.getChild('StringLiteral');
        if (!label || !op || !value) continue;
        const matcher = { metric, label: text(label), op: text(op), value: unquote(text(value)) };
        const target = edits.setOnEverySelector;
        if (target && matcher.label === target.label) {
          labelSet = true;
          splices.push({ from: op.from, to: value.to, insert: `=${quoted(target.value)}` });
          continue;
        }
        const matcherText = edits.replaceMatcher?.(matcher);
        if (matcherText !== undefined) {
          splices.push({ from: child.from, to: child.to, insert: matcherText });
          continue;
        }
        const replaced = edits.replaceValue?.(matcher);
        if (replaced !== undefined)
          splices.push({ from: value.from, to: value.to, insert: quoted(replaced) });
      }
      const target = edits.setOnEverySelector;
      if (target && !labelSet) {
        const added = `${target.label}=${quoted(target.value)}`;
        if (block)
          splices.push({
            from: block.from + 1,
            to: block.from + 1,
            insert: matchers.length > 0 ? `${added}, ` : added,
          });
        else splices.push({ from: node.to, to: node.to, insert: `{${added}}` });
      }
      return false;
    },
  });
  let result = expression;
  for (const splice of splices.sort((a, b) => b.from - a.from))
    result = result.slice(0, splice.from) + splice.insert + result.slice(splice.to);
  return result;
}
