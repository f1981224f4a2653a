import type { ChangeEvent } from '@walpurge/protocol';

/**
 * Why a template could not be rendered; a stable code (metric label, JSON output). `empty-value`:
 * an empty value would widen a pattern or prefix; `dot-segment`: a value would make a URL path
 * segment `.`/`..` (see render.ts). Neither is purged as rendered. describeUnknownValue says it in words.
 */
export type UnknownReason =
  'unchanged-toast' | 'old-value-unavailable' | 'column-missing' | 'truncate' | 'empty-value' | 'dot-segment';

const reasonText: Record<UnknownReason, (column: string) => string> = {
  'unchanged-toast': (c) =>
    `the change does not carry the value of {${c}} (an unchanged TOASTed value: REPLICA IDENTITY FULL sends it)`,
  'old-value-unavailable': (c) =>
    `the change does not carry the old value of {${c}} (it needs REPLICA IDENTITY FULL, or {${c}} in the replica identity)`,
  'column-missing': (c) => `the row has no column {${c}}`,
  truncate: () => 'a truncate has no rows to take values from',
  'empty-value': (c) => `value of {${c}} is empty; an empty value could widen the purge`,
  'dot-segment': (c) =>
    `value of {${c}} makes the URL path segment "." or "..", which addresses a parent path and could widen the purge`,
};

/**
 * The reason in words, for `walpurge explain` and logs, e.g. "value of {slug} is empty; an empty
 * value could widen the purge, the rule's fallback is used".
 */
export function describeUnknownValue(unknown: {
  column: string;
  reason: UnknownReason;
  fallbackUsed: boolean;
}): string {
  const why = reasonText[unknown.reason](unknown.column);
  return `${why}, ${unknown.fallbackUsed ? "the rule's fallback is used" : 'the rule has no fallback: not purged'}`;
}

export type ValueLookup = { known: true; value: unknown } | { known: false; reason: UnknownReason };

const has = (row: Record<string, unknown> | null, column: string): row is Record<string, unknown> =>
  row !== null && Object.prototype.hasOwnProperty.call(row, column);

/**
 * The new row's value of a column (inserts, updates). An unchanged TOASTed column is absent from
 * `after` but equal to its old value, so `before` (REPLICA IDENTITY FULL) can still supply it.
 */
export function newValue(event: ChangeEvent, column: string): ValueLookup {
  if (has(event.after, column)) return { known: true, value: event.after[column] };
  if (event.unchanged.includes(column)) {
    if (has(event.before, column)) return { known: true, value: event.before[column] };
    return { known: false, reason: 'unchanged-toast' };
  }
  return { known: false, reason: 'column-missing' };
}

/**
 * The old row's value of a column (updates, deletes): from `before`, else from `key` (the replica
 * identity columns are always known for deletes, and for updates that changed them).
 */
export function oldValue(event: ChangeEvent, column: string): ValueLookup {
  if (has(event.before, column)) return { known: true, value: event.before[column] };
  if (has(event.key, column)) return { known: true, value: event.key[column] };
  if (event.op === 'u' && event.unchanged.includes(column))
    return { known: false, reason: 'unchanged-toast' };
  return { known: false, reason: 'old-value-unavailable' };
}

/**
 * `when.changed` for one column of an update. Unknowable (no old value) counts as changed: skipping a
 * purge we are unsure about could leave a stale entry forever; an extra purge only costs a miss.
 */
export function columnChanged(event: ChangeEvent, column: string): boolean {
  if (event.unchanged.includes(column)) return false;
  if (!has(event.before, column) || !has(event.after, column)) return true;
  return stableText(event.before[column]) !== stableText(event.after[column]);
}

function stableText(value: unknown): string {
  if (value === null || typeof value !== 'object') return `${typeof value}:${String(value)}`;
  if (Array.isArray(value)) return `[${value.map(stableText).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) =>
    a < b ? -1 : a > b ? 1 : 0,
  );
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableText(v)}`).join(',')}}`;
}

/**
 * How a row value reads inside a key: what string interpolation gives in application code
 * (`user:${id}`), so keys built by the application and by walpurge agree. int8/numeric arrive as
 * strings already; SQL NULL reads `null`; json values are written as JSON.
 */
export function valueText(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean')
    return String(value);
  return JSON.stringify(value);
}
