/** `users` means `public.users`, as in PostgreSQL's default search_path. */
export function qualifyTable(table: string): string {
  return table.includes('.') ? table : `public.${table}`;
}

export function splitTable(table: string): { schema: string; name: string } {
  const qualified = qualifyTable(table);
  const dot = qualified.indexOf('.');
  return { schema: qualified.slice(0, dot), name: qualified.slice(dot + 1) };
}
