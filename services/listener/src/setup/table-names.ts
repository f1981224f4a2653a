import type { WalpurgeConfig } from '@walpurge/config';

export interface TableName {
  schema: string;
  table: string;
}

/** `users` → public.users; `app.users` → app.users. Names are taken as written (case-sensitive). */
export function parseTableName(text: string): TableName {
  const dot = text.indexOf('.');
  return dot < 0
    ? { schema: 'public', table: text }
    : { schema: text.slice(0, dot), table: text.slice(dot + 1) };
}

export function formatTableName(name: TableName): string {
  return `${name.schema}.${name.table}`;
}

export function quoteIdent(identifier: string): string {
  return `"${identifier.replace(/"/g, '""')}"`;
}

export function quoteTable(name: TableName): string {
  return `${quoteIdent(name.schema)}.${quoteIdent(name.table)}`;
}

/** The tables to publish: `database.tables` when given, else every table a rule names; deduplicated. */
export function tablesToPublish(config: Pick<WalpurgeConfig, 'database' | 'rules'>): TableName[] {
  const configured = config.database?.tables ?? [];
  const names = configured.length > 0 ? configured : config.rules.map((rule) => rule.table);
  const seen = new Map<string, TableName>();
  for (const text of names) {
    const name = parseTableName(text);
    seen.set(formatTableName(name), name);
  }
  return [...seen.values()];
}
