import type { Rule } from './schema/index.js';
import { parseTemplate } from './template.js';

/**
 * The row columns each table's rules read, keyed by `schema.table` ('table' is public.table): those
 * in their templates (keys, patterns, tags, namespaces, CDN targets, fallbacks) and in when.changed.
 * A publication's column list must keep these: PostgreSQL still sends a change to other columns, but
 * without the dropped columns' values, so templates on them never render.
 */
export function columnsReadByTable(rules: readonly Rule[]): Map<string, string[]> {
  const byTable = new Map<string, Set<string>>();
  for (const rule of rules) {
    const table = rule.table.includes('.') ? rule.table : `public.${rule.table}`;
    const columns = byTable.get(table) ?? new Set<string>();
    byTable.set(table, columns);
    for (const section of [rule, rule.fallback ?? {}])
      for (const sources of [...Object.values(section.redis ?? {}), ...Object.values(section.cdn ?? {})])
        for (const source of sources)
          for (const field of parseTemplate(source).fields) columns.add(field.column);
    for (const column of rule.when?.changed ?? []) columns.add(column);
  }
  return new Map([...byTable].map(([table, columns]) => [table, [...columns].sort()]));
}
