/**
 * A rule's `version` column orders the row's versions: the consistency observer compares the
 * version a cache entry was loaded at with the committed row's. Only types whose order is the
 * order of writes and whose text the observer can compare qualify: integers (a counter) and
 * timestamps/dates (`updated_at`).
 */
export const ORDERED_VERSION_TYPES: ReadonlySet<string> = new Set([
  'int2',
  'int4',
  'int8',
  'numeric',
  'timestamp',
  'timestamptz',
  'date',
]);

export interface VersionColumnInfo {
  /** The column's base type (a domain's underlying type), as pg_type.typname: int8, timestamptz, ... */
  baseType: string;
  /** The type as PostgreSQL prints it (format_type), for messages. */
  displayType: string;
  /** A stored generated column the publication does not send: change events never carry it. */
  unsent: boolean;
}

/**
 * Why `column` of `table` cannot be a rule's version column, in one line, or undefined when it can.
 * `info` is undefined when the table has no such column.
 */
export function versionColumnProblem(
  table: string,
  column: string,
  info: VersionColumnInfo | undefined,
): string | undefined {
  if (!info) {
    return `version column '${column}' does not exist in ${table}; name a column every write sets (a bigint counter, or updated_at)`;
  }
  if (!ORDERED_VERSION_TYPES.has(info.baseType)) {
    return `version column '${column}' of ${table} is ${info.displayType}, which does not order the row's versions; use a counter (smallint, integer, bigint or numeric) or a timestamp, timestamptz or date column set by every write`;
  }
  if (info.unsent) {
    return `version column '${column}' is a generated column of ${table}, which logical replication does not send, so no change carries the committed version; use a column every write sets, or (PostgreSQL 18) publish generated columns with publish_generated_columns = stored`;
  }
  return undefined;
}
