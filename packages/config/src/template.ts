/**
 * Key templates: `user:{id}`, `user_by_email:{old.email}`, `{new.email}`; `{{` and `}}` are literal
 * braces. `{col}` means the new row for inserts/updates and the old row for deletes; `old.`/`new.`
 * pick a side explicitly. Only syntax lives here; rendering is in @walpurge/rules.
 */
export type TemplatePart =
  { kind: 'text'; text: string } | { kind: 'field'; side: 'row' | 'old' | 'new'; column: string };

export interface ParsedTemplate {
  source: string;
  parts: TemplatePart[];
  /** Columns referenced, by side. */
  fields: Array<{ side: 'row' | 'old' | 'new'; column: string }>;
}

export class TemplateSyntaxError extends Error {
  constructor(
    message: string,
    readonly template: string,
    readonly offset: number,
  ) {
    super(`${message} in template ${JSON.stringify(template)} at character ${offset + 1}`);
    this.name = 'TemplateSyntaxError';
  }
}

const COLUMN = /^[A-Za-z_][A-Za-z0-9_$]*$/;

export function parseTemplate(source: string): ParsedTemplate {
  const parts: TemplatePart[] = [];
  let text = '';
  let i = 0;
  while (i < source.length) {
    const ch = source[i] as string;
    if (ch === '{' && source[i + 1] === '{') {
      text += '{';
      i += 2;
    } else if (ch === '}' && source[i + 1] === '}') {
      text += '}';
      i += 2;
    } else if (ch === '}') {
      throw new TemplateSyntaxError("unmatched '}' (write '}}' for a literal brace)", source, i);
    } else if (ch === '{') {
      const end = source.indexOf('}', i + 1);
      if (end < 0) throw new TemplateSyntaxError("unclosed '{'", source, i);
      const inner = source.slice(i + 1, end).trim();
      const dot = inner.indexOf('.');
      const prefix = dot >= 0 ? inner.slice(0, dot) : '';
      const column = dot >= 0 ? inner.slice(dot + 1) : inner;
      if (dot >= 0 && prefix !== 'old' && prefix !== 'new') {
        throw new TemplateSyntaxError(
          `unknown prefix '${prefix}.' (use {col}, {old.col} or {new.col})`,
          source,
          i,
        );
      }
      if (!COLUMN.test(column)) {
        throw new TemplateSyntaxError(`'${inner}' is not a column reference`, source, i);
      }
      if (text) parts.push({ kind: 'text', text });
      text = '';
      parts.push({ kind: 'field', side: dot >= 0 ? (prefix as 'old' | 'new') : 'row', column });
      i = end + 1;
    } else {
      text += ch;
      i += 1;
    }
  }
  if (text) parts.push({ kind: 'text', text });
  const fields = parts.flatMap((part) =>
    part.kind === 'field' ? [{ side: part.side, column: part.column }] : [],
  );
  return { source, parts, fields };
}
