import { z } from 'zod';
import type { ConfigProblem, Rule } from '@walpurge/config';
import { compileRule, type CompiledRule, type CompiledTemplate } from './compile.js';
import { partitionIdentityProblems } from './partition-identity.js';
import { versionColumnProblem, type VersionColumnInfo } from './version-column.js';

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
  generated_columns: z.array(z.string()),
  /** Aligned with `columns`: each column's base type (domains resolved) and its printed type. */
  column_base_types: z.array(z.string()),
  column_display_types: z.array(z.string()),
});
type TableInfo = z.infer<typeof TableInfoRow>;

const TABLES_SQL = `
SELECT n.nspname || '.' || c.relname AS qualified,
       c.relreplident::text AS identity,
       array(SELECT a.attname::text FROM pg_attribute a
              WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum) AS columns,
       array(SELECT bt.typname::text FROM pg_attribute a
               JOIN pg_type t ON t.oid = a.atttypid
               JOIN pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
              WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum) AS column_base_types,
       array(SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
              WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum) AS column_display_types,
       array(SELECT a.attname::text FROM pg_index i
               JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
              WHERE i.indrelid = c.oid
                AND ((c.relreplident = 'd' AND i.indisprimary) OR (c.relreplident = 'i' AND i.indisreplident))) AS identity_columns,
       array(SELECT a.attname::text FROM pg_attribute a
              WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                AND a.attlen = -1 AND a.attstorage IN ('x', 'e')) AS toastable_columns,
       -- attgenerated exists since PostgreSQL 12: read through to_jsonb so older servers work too.
       array(SELECT a.attname::text FROM pg_attribute a
              WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                AND to_jsonb(a) ->> 'attgenerated' = 's') AS generated_columns
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p') AND n.nspname || '.' || c.relname = ANY($1::text[])`;

const identityNames = { d: 'DEFAULT', n: 'NOTHING', f: 'FULL', i: 'USING INDEX' } as const;

function oldValueProblem(info: TableInfo, table: string, column: string, why: string): string | undefined {
  if (info.identity === 'f' || info.identity_columns.includes(column)) return undefined;
  return `${why} needs the old value of '${column}', but ${table} has REPLICA IDENTITY ${identityNames[info.identity]}, ${oldRowSent(info)}; run ALTER TABLE ${table} REPLICA IDENTITY FULL`;
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
  unsent: readonly string[],
): ConfigProblem[] {
  if (!rule.operations.has('u') || info.identity === 'f' || rule.fallback.length > 0) return [];
  const columns = new Set(
    template.parsed.fields
      .filter(
        (field) =>
          field.side !== 'old' &&
          info.toastable_columns.includes(field.column) &&
          !unsent.includes(field.column),
      )
      .map((field) => field.column),
  );
  return [...columns].map((column) =>
    problemAt(
      template.segments,
      `${named(rule)}'${column}' can be stored out of line (TOAST); an update that does not change a long value does not send it under REPLICA IDENTITY ${identityNames[info.identity]}, and this entry is then not purged; declare a fallback for the rule or run ALTER TABLE ${rule.table} REPLICA IDENTITY FULL`,
    ),
  );
}

/** What the version check needs of a column, or undefined when the table has no such column. */
function versionColumn(
  info: TableInfo,
  column: string,
  unsent: readonly string[],
): VersionColumnInfo | undefined {
  const at = info.columns.indexOf(column);
  const baseType = info.column_base_types[at];
  const displayType = info.column_display_types[at];
  if (at < 0 || baseType === undefined || displayType === undefined) return undefined;
  return { baseType, displayType, unsent: unsent.includes(column) };
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
  /** Generated columns replication does not send: reported by generatedColumnProblems. */
  unsent: readonly string[],
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
    if (unsent.includes(field.column)) continue;
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

const ServerInfoRow = z.object({
  version: z.number(),
  /** pg_publication.pubgencols (PostgreSQL 18: 'n' none, 's' stored); null when absent. */
  pubgencols: z.string().nullable(),
});

const SERVER_SQL = `
SELECT current_setting('server_version_num')::int AS version,
       (SELECT to_jsonb(p) ->> 'pubgencols' FROM pg_publication p WHERE p.pubname = $1) AS pubgencols`;

/**
 * Whether pgoutput sends stored generated columns: never before PostgreSQL 18; on 18 only when the
 * publication says `publish_generated_columns = stored` (a publication walpurge has yet to create
 * counts as not sending them).
 */
async function sendsGeneratedColumns(client: SchemaQueryable, publication: string | undefined) {
  const result = await client.query(SERVER_SQL, [publication ?? '']);
  const server = ServerInfoRow.parse(result.rows[0]);
  const sends = server.version >= 180000 && (server.pubgencols === 's' || server.pubgencols === 'true');
  return { sends, version: server.version };
}

/**
 * A template or when.changed on a stored generated column can never be evaluated when the
 * replication stream leaves the column out: every change would purge the fallback (or nothing).
 */
function generatedColumnProblems(
  rule: CompiledRule,
  info: TableInfo,
  generated: { sends: boolean; version: number },
  publication: string | undefined,
  problemAt: ProblemAt,
): ConfigProblem[] {
  if (generated.sends || info.generated_columns.length === 0) return [];
  // A rule that only handles truncates never reads a value (its templates are widened).
  if (![...rule.operations].some((op) => op !== 't')) return [];
  const why = (column: string): string => {
    const intro = `${named(rule)}'${column}' is a generated column of ${rule.table}, which logical replication does not send`;
    const fix =
      generated.version >= 180000
        ? `; publish it with ALTER PUBLICATION ${publication ?? 'walpurge'} SET (publish_generated_columns = stored), or derive the entry from the columns '${column}' is computed from`
        : ` before PostgreSQL 18 (this server is ${Math.floor(generated.version / 10000)}); derive the entry from the columns '${column}' is computed from (or, on PostgreSQL 18, publish with publish_generated_columns = stored)`;
    return intro + fix;
  };
  const problems: ConfigProblem[] = [];
  (rule.changed ?? []).forEach((column, i) => {
    if (info.generated_columns.includes(column))
      problems.push(problemAt(['rules', rule.index, 'when', 'changed', i], why(column)));
  });
  for (const template of [...rule.templates, ...rule.fallback]) {
    const columns = new Set(template.parsed.fields.map((field) => field.column));
    for (const column of columns)
      if (info.generated_columns.includes(column)) problems.push(problemAt(template.segments, why(column)));
  }
  return problems;
}

/** What the table's identity sends of the old row, in words (for problems and warnings). */
function oldRowSent(info: TableInfo): string {
  return info.identity === 'n'
    ? 'which sends no old values at all'
    : info.identity_columns.length > 0
      ? `which only sends the old values of ${info.identity_columns.join(', ')}`
      : 'but the table has no primary key, so no old values are sent';
}

/**
 * An update renders `{col}` from the old row too, to purge the entry of the old value (a changed
 * slug leaves `page:{old slug}` stale otherwise). Outside REPLICA IDENTITY FULL only the identity
 * columns' old values are sent: such a template is refused, unless the rule has a fallback (purged
 * on every update, since whether the value changed cannot be told: a warning says so) or says
 * `oldValues: ignore-missing`. Deletes have their own check (templateProblems), so rules that
 * handle deletes are reported there once.
 */
function oldSideProblems(
  rule: CompiledRule,
  info: TableInfo,
  unsent: readonly string[],
  problemAt: ProblemAt,
  warnings: ConfigProblem[] | undefined,
): ConfigProblem[] {
  if (!rule.operations.has('u') || info.identity === 'f' || rule.oldValues === 'ignore-missing') return [];
  const problems: ConfigProblem[] = [];
  for (const template of [...rule.templates, ...rule.fallback]) {
    const columns = new Set(
      template.parsed.fields
        .filter(
          (field) =>
            field.side === 'row' &&
            info.columns.includes(field.column) &&
            !unsent.includes(field.column) &&
            !info.identity_columns.includes(field.column),
        )
        .map((field) => field.column),
    );
    const isFallback = template.segments[2] === 'fallback';
    for (const column of columns) {
      const what = `${named(rule)}an update also purges the entry of the old value of {${column}}, but ${rule.table} has REPLICA IDENTITY ${identityNames[info.identity]}, ${oldRowSent(info)}`;
      if (!isFallback && rule.fallback.length > 0) {
        warnings?.push(
          problemAt(
            template.segments,
            `${what}: every update that could change '${column}' purges the rule's fallback instead; ALTER TABLE ${rule.table} REPLICA IDENTITY FULL purges the exact entries`,
          ),
        );
      } else if (!rule.operations.has('d')) {
        problems.push(
          problemAt(
            template.segments,
            `${what}: when '${column}' changes, the old entry stays cached; run ALTER TABLE ${rule.table} REPLICA IDENTITY FULL, or declare a fallback for the rule (purged on such updates), or set oldValues: ignore-missing on the rule if '${column}' never changes`,
          ),
        );
      }
    }
  }
  return problems;
}

/**
 * `when.changed` compares old and new values; a column whose old value the identity does not send
 * counts as changed (skipping an update we are unsure about could leave a stale entry). One such
 * column makes the condition true for every update: then it has no effect, which is worth saying.
 */
function changedNoOpWarning(
  rule: CompiledRule,
  info: TableInfo,
  unsent: readonly string[],
  problemAt: ProblemAt,
) {
  if (!rule.changed || !rule.operations.has('u') || info.identity === 'f') return undefined;
  const index = rule.changed.findIndex(
    (column) =>
      info.columns.includes(column) && !unsent.includes(column) && !info.identity_columns.includes(column),
  );
  const column = rule.changed[index];
  if (column === undefined) return undefined;
  return problemAt(
    ['rules', rule.index, 'when', 'changed', index],
    `${named(rule)}when.changed has no effect: ${rule.table} has REPLICA IDENTITY ${identityNames[info.identity]}, ${oldRowSent(info)}, so whether '${column}' changed cannot be told and every update is purged; ALTER TABLE ${rule.table} REPLICA IDENTITY FULL lets it skip updates`,
  );
}

/**
 * Checks rules against the live schema: unknown tables and columns (in templates and
 * `when.changed`), a `version` column that is missing, does not order versions or is not sent,
 * generated columns replication does not send, and templates that need old values the table's
 * REPLICA IDENTITY cannot deliver (on deletes, `{old.col}`, and the old entry of an update).
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
  /** The publication walpurge reads (database.publication), for what it sends of generated columns. */
  options: { publication?: string } = {},
): Promise<ConfigProblem[]> {
  const compiled = rules.map((rule, index) => compileRule(rule, index));
  const tables = [...new Set(compiled.map((rule) => rule.table))];
  const result = await client.query(TABLES_SQL, [tables]);
  const generated = await sendsGeneratedColumns(client, options.publication);
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
    const unsent = generated.sends ? [] : info.generated_columns;
    const version = rule.source.version;
    if (version !== undefined) {
      const message = versionColumnProblem(rule.table, version, versionColumn(info, version, unsent));
      if (message) problems.push(problemAt(['rules', rule.index, 'version'], `${named(rule)}${message}`));
    }
    for (const template of [...rule.templates, ...rule.fallback])
      problems.push(...templateProblems(rule, template, info, problemAt, unsent));
    problems.push(...generatedColumnProblems(rule, info, generated, options.publication, problemAt));
    problems.push(...oldSideProblems(rule, info, unsent, problemAt, warnings));
    const noOp = changedNoOpWarning(rule, info, unsent, problemAt);
    if (noOp) warnings?.push(noOp);
    for (const template of rule.templates)
      warnings?.push(...toastWarnings(rule, template, info, problemAt, unsent));
  }
  return problems;
}
