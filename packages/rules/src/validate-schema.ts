import { z } from 'zod';
import type { ConfigProblem, Rule } from '@walpurge/config';
import { compileRule, type CompiledRule, type CompiledTemplate } from './compile.js';
import { partitionIdentityProblems } from './partition-identity.js';

/** Anything that runs a parameterised query: a pg Client, Pool or PoolClient. */
export interface SchemaQueryable {
  query(text: string, values?: unknown[]): Promise<{ rows: unknown[] }>;
}

export type ProblemAt = (path: ReadonlyArray<PropertyKey>, message: string) => ConfigProblem;

const TableInfoRow = z.object({
  qualified: z.string(),
  identity: z.enum(['d', 'n', 'f', 'i']),
  columns: z.array(z.string()),
  identity_columns: z.array(z.string()),
  toastable_columns: z.array(z.string()),
});
type TableInfo = z.infer<typeof TableInfoRow>;

const TABLES_SQL = `
SELECT n.nspname || '.' || c.relname AS qualified,
       c.relreplident::text AS identity,
       array(SELECT a.attname::text FROM pg_attribute a
              WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum) AS columns,
       array(SELECT a.attname::text FROM pg_index i
               JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
              WHERE i.indrelid = c.oid
                AND ((c.relreplident = 'd' AND i.indisprimary) OR (c.relreplident = 'i' AND i.indisreplident))) AS identity_columns,
       array(SELECT a.attname::text FROM pg_attribute a
              WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                AND a.attlen = -1 AND a.attstorage IN ('x', 'e')) AS toastable_columns
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p') AND n.nspname || '.' || c.relname = ANY($1::text[])`;

const identityNames = { d: 'DEFAULT', n: 'NOTHING', f: 'FULL', i: 'USING INDEX' } as const;

function oldValueProblem(info: TableInfo, table: string, column: string, why: string): string | undefined {
  if (info.identity === 'f' || info.identity_columns.includes(column)) return undefined;
  const sent =
    info.identity === 'n'
      ? 'which sends no old values at all'
      : info.identity_columns.length > 0
        ? `which only sends the old values of ${info.identity_columns.join(', ')}`
        : 'but the table has no primary key, so no old values are sent';
  return `${why} needs the old value of '${column}', but ${table} has REPLICA IDENTITY ${identityNames[info.identity]}, ${sent}; run ALTER TABLE ${table} REPLICA IDENTITY FULL`;
}

/**
 * An update that leaves a TOASTed (out-of-line, > ~2 kB) value unchanged does not send it; only
 * REPLICA IDENTITY FULL brings it back through the old row. Such a template then cannot be rendered
 * and the rule's `fallback` is purged instead: without a fallback that entry stays stale. Values
 * that long are rare in keys, so this is a warning, not an error.
 */
function toastWarnings(
  rule: CompiledRule,
  template: CompiledTemplate,
  info: TableInfo,
  problemAt: ProblemAt,
): ConfigProblem[] {
  if (!rule.operations.has('u') || info.identity === 'f' || rule.fallback.length > 0) return [];
  const columns = new Set(
    template.parsed.fields
      .filter((field) => field.side !== 'old' && info.toastable_columns.includes(field.column))
      .map((field) => field.column),
  );
  return [...columns].map((column) =>
    problemAt(
      template.segments,
      `${named(rule)}'${column}' can be stored out of line (TOAST); an update that does not change a long value does not send it under REPLICA IDENTITY ${identityNames[info.identity]}, and this entry is then not purged; declare a fallback for the rule or run ALTER TABLE ${rule.table} REPLICA IDENTITY FULL`,
    ),
  );
}

/** Problems name the rule itself when it has a name; the path names its position either way. */
function named(rule: CompiledRule): string {
  return rule.source.name === undefined ? '' : `rule '${rule.source.name}': `;
}

function templateProblems(
  rule: CompiledRule,
  template: CompiledTemplate,
  info: TableInfo,
  problemAt: ProblemAt,
): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const reported = new Set<string>();
  for (const field of template.parsed.fields) {
    const ref = field.side === 'row' ? `{${field.column}}` : `{${field.side}.${field.column}}`;
    if (!info.columns.includes(field.column)) {
      if (!reported.has(field.column))
        problems.push(
          problemAt(template.segments, `${named(rule)}unknown column '${field.column}' in ${rule.table}`),
        );
      reported.add(field.column);
      continue;
    }
    // Old values are needed by {old.col} on updates/deletes and by {col} on deletes.
    const needsOld =
      (field.side === 'old' && (rule.operations.has('u') || rule.operations.has('d'))) ||
      (field.side === 'row' && rule.operations.has('d'));
    if (!needsOld) continue;
    const why = field.side === 'old' ? ref : `${ref} on delete (rendered from the deleted row)`;
    const message = oldValueProblem(info, rule.table, field.column, why);
    if (message) problems.push(problemAt(template.segments, `${named(rule)}${message}`));
  }
  return problems;
}

/**
 * Checks rules against the live schema: unknown tables and columns (in templates and
 * `when.changed`), and templates that need old values the table's REPLICA IDENTITY cannot deliver.
 * Returns located problems naming the rule, e.g.
 * `rules[2].redis.keys[0]: unknown column 'emial' in public.users`. An empty list means all good.
 */
export async function validateRulesAgainstSchema(
  rules: readonly Rule[],
  client: SchemaQueryable,
  problemAt: ProblemAt,
  /**
   * Receives what is allowed but may leave entries stale (see toastWarnings). Warnings that need no
   * database (e.g. open-ended CDN prefixes) come from ruleWarnings instead.
   */
  warnings?: ConfigProblem[],
): Promise<ConfigProblem[]> {
  const compiled = rules.map((rule, index) => compileRule(rule, index));
  const tables = [...new Set(compiled.map((rule) => rule.table))];
  const result = await client.query(TABLES_SQL, [tables]);
  const infos = new Map(
    result.rows.map((row) => TableInfoRow.parse(row)).map((info) => [info.qualified, info]),
  );
  // A partitioned table's identity is its partitions' (checked in a function of its own).
  const problems: ConfigProblem[] = await partitionIdentityProblems(rules, client, problemAt);
  for (const rule of compiled) {
    const info = infos.get(rule.table);
    if (!info) {
      problems.push(
        problemAt(
          ['rules', rule.index, 'table'],
          `${named(rule)}unknown table ${rule.table} (no such table, or not visible to this role)`,
        ),
      );
      continue;
    }
    (rule.changed ?? []).forEach((column, i) => {
      if (!info.columns.includes(column))
        problems.push(
          problemAt(
            ['rules', rule.index, 'when', 'changed', i],
            `${named(rule)}unknown column '${column}' in ${rule.table}`,
          ),
        );
    });
    for (const template of [...rule.templates, ...rule.fallback])
      problems.push(...templateProblems(rule, template, info, problemAt));
    for (const template of rule.templates) warnings?.push(...toastWarnings(rule, template, info, problemAt));
  }
  return problems;
}
