import type { ChangeEvent } from '@walpurge/protocol';
import type { CompiledTemplate } from './compile.js';
import { newValue, oldValue, valueText, type UnknownReason } from './row-values.js';
import { dotSegmentValue, type ValueSpan } from './url-value.js';

export type RenderResult =
  | { ok: true; text: string }
  | { ok: false; unknown: { column: string; reason: UnknownReason } }
  /** The template refers to a row that this operation does not have ({old.x} on insert, {new.x} on delete). */
  | { ok: false; notApplicable: true };

/** Renders a template with `{col}` read from `rowSide`; `{old.col}`/`{new.col}` pick their side. */
export function renderTemplate(
  template: CompiledTemplate,
  event: ChangeEvent,
  rowSide: 'old' | 'new',
): RenderResult {
  let text = '';
  const values: ValueSpan[] = [];
  for (const part of template.parsed.parts) {
    if (part.kind === 'text') {
      text += part.text;
      continue;
    }
    const side = part.side === 'row' ? rowSide : part.side;
    if (side === 'old' && event.op === 'c') return { ok: false, notApplicable: true };
    if (side === 'new' && event.op === 'd') return { ok: false, notApplicable: true };
    const lookup = side === 'old' ? oldValue(event, part.column) : newValue(event, part.column);
    if (!lookup.known) return { ok: false, unknown: { column: part.column, reason: lookup.reason } };
    const value = template.escape(valueText(lookup.value));
    values.push({ start: text.length, end: text.length + value.length, column: part.column });
    text += value;
  }
  const widened = values.find(({ start, end }) => start === end && widens(template, text, start));
  if (widened) return { ok: false, unknown: { column: widened.column, reason: 'empty-value' } };
  if (template.kind === 'cdn.urls' || template.kind === 'cdn.prefixes') {
    const dots = dotSegmentValue(text, values);
    if (dots) return { ok: false, unknown: { column: dots.column, reason: 'dot-segment' } };
  }
  return { ok: true, text };
}

/**
 * An empty value right before a wildcard of the template (`{slug}*` → `*`, every key) or at the
 * end of a CDN prefix (`https://x/p/{slug}` → all of /p/) would purge far more than the row's
 * entries. Escaped values cannot produce an unescaped wildcard, so only the template's own text
 * can follow at `at`.
 */
function widens(template: CompiledTemplate, text: string, at: number): boolean {
  if (template.kind === 'redis.patterns') return /^[*?[]/.test(text.slice(at));
  if (template.kind === 'cdn.prefixes') return at === text.length;
  return false;
}

export function hasFields(template: CompiledTemplate): boolean {
  return template.parsed.fields.length > 0;
}

export function hasRowFields(template: CompiledTemplate): boolean {
  return template.parsed.fields.some((field) => field.side === 'row');
}

/** The literal text before the template's first field (`user:` of `user:{id}:posts`). */
export function literalPrefix(template: CompiledTemplate): string {
  const first = template.parsed.parts[0];
  return first?.kind === 'text' ? first.text : '';
}

/**
 * For truncate: the template with every field turned into `*`. In a Redis pattern the literal text
 * is already glob syntax; in a key, glob characters of the literal text are escaped first.
 */
export function wildcardPattern(template: CompiledTemplate, escapeLiteral: (text: string) => string): string {
  return template.parsed.parts
    .map((part) => (part.kind === 'text' ? escapeLiteral(part.text) : '*'))
    .join('');
}
