import { qualified, type WalpurgeConfig } from './schema/index.js';
import { parseTemplate } from './template.js';

/**
 * The row columns walpurge reads from each table's changes, keyed by `schema.table` ('table' is
 * public.table): those in the rules' templates (keys, patterns, tags, namespaces, CDN targets,
 * fallbacks), when.changed and the rule's version column, and the flusher's version column on its tables (how the invalidator
 * recognises its own write echoing back). A publication's column list must keep these: PostgreSQL
 * still sends a change to other columns, but without the dropped columns' values.
 */
export function columnsReadByTable(config: Pick<WalpurgeConfig, 'rules' | 'flusher'>): Map<string, string[]> {
  const byTable = new Map<string, Set<string>>();
  const columnsOf = (table: string): Set<string> => {
    const columns = byTable.get(qualified(table)) ?? new Set<string>();
    byTable.set(qualified(table), columns);
    return columns;
  };
  for (const rule of config.rules) {
    const columns = columnsOf(rule.table);
    for (const section of [rule, rule.fallback ?? {}])
      for (const sources of [...Object.values(section.redis ?? {}), ...Object.values(section.cdn ?? {})])
        for (const source of sources)
          for (const field of parseTemplate(source).fields) columns.add(field.column);
    for (const column of rule.when?.changed ?? []) columns.add(column);
    // The consistency observer reads the committed row's version from the change itself.
    if (rule.version) columns.add(rule.version);
  }
  const flusher = config.flusher;
  if (flusher) for (const table of flusher.tables) columnsOf(table).add(flusher.versionColumn);
  return new Map([...byTable].map(([table, columns]) => [table, [...columns].sort()]));
}
