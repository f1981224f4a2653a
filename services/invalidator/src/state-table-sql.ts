/**
 * `table` or `schema.table` (as configured, e.g. database.deadLetterTable, database.cdnQueueTable)
 * quoted for SQL: the tables the inline transport keeps its state in. Names are taken as written.
 */
export function stateTableSql(table: string): string {
  const dot = table.indexOf('.');
  const [schema, name] = dot < 0 ? ['public', table] : [table.slice(0, dot), table.slice(dot + 1)];
  const quote = (identifier: string): string => `"${identifier.replace(/"/g, '""')}"`;
  return `${quote(schema)}.${quote(name)}`;
}
