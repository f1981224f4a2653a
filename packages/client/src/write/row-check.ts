import { checkRowAgainstShape, type ColumnInfo, type TableShape } from '@walpurge/write-behind';

/**
 * Accept-time checks of a write against its table. A write-behind row is cached the moment it is
 * accepted and reaches PostgreSQL later, so anything PostgreSQL would refuse, or would store
 * differently from what was cached, is refused here, before anything is cached or queued.
 * PostgreSQL alone can check constraints (CHECK, foreign keys, unique): those fail at flush.
 */

const INT_RANGE: Record<string, readonly [bigint, bigint]> = {
  int2: [-(2n ** 15n), 2n ** 15n - 1n],
  int4: [-(2n ** 31n), 2n ** 31n - 1n],
  int8: [-(2n ** 63n), 2n ** 63n - 1n],
};
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const NUMERIC = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;
const BOOLEAN_TEXT = /^(t|true|f|false|y|yes|n|no|on|off|1|0)$/i;
const TEXT_TYPES = new Set(['text', 'varchar', 'bpchar', 'name', 'citext']);

export type ValueCheck = { ok: true; value: unknown } | { ok: false; reason: string };

/** Whether `value` fits the column; `value` back is the form PostgreSQL would return for a key. */
export function checkColumnValue(column: string, info: ColumnInfo, value: unknown): ValueCheck {
  const bad = (expected: string): ValueCheck => ({
    ok: false,
    reason: `column ${column} is ${expected}, got ${describe(value)}`,
  });
  if (value === null) {
    return info.notNull
      ? { ok: false, reason: `column ${column} is NOT NULL, got null` }
      : { ok: true, value };
  }
  const range = INT_RANGE[info.baseType];
  if (range) {
    const integer = toBigInt(value);
    if (integer === undefined || integer < range[0] || integer > range[1]) {
      return bad(
        info.baseType === 'int8'
          ? 'an integer (int8; beyond 2^53 pass it as a decimal string)'
          : `an integer (${info.baseType})`,
      );
    }
    // Numbers where exact, decimal strings beyond 2^53 (as JSON cannot carry them as numbers).
    const safe = integer >= BigInt(Number.MIN_SAFE_INTEGER) && integer <= BigInt(Number.MAX_SAFE_INTEGER);
    return { ok: true, value: safe ? Number(integer) : integer.toString() };
  }
  switch (info.baseType) {
    case 'uuid':
      return typeof value === 'string' && UUID.test(value)
        ? { ok: true, value: value.toLowerCase() }
        : bad('a uuid (8-4-4-4-12 hex digits)');
    case 'numeric':
      return (typeof value === 'number' && Number.isFinite(value)) ||
        (typeof value === 'string' && (NUMERIC.test(value) || value === 'NaN'))
        ? { ok: true, value }
        : bad('numeric');
    case 'float4':
    case 'float8':
      return typeof value === 'number' ||
        (typeof value === 'string' && value.trim() !== '' && !Number.isNaN(Number(value)))
        ? { ok: true, value }
        : bad('a number');
    case 'bool':
      return typeof value === 'boolean' || (typeof value === 'string' && BOOLEAN_TEXT.test(value))
        ? { ok: true, value }
        : bad('a boolean');
    case 'json':
    case 'jsonb':
      return { ok: true, value };
  }
  if (TEXT_TYPES.has(info.baseType)) {
    if (typeof value !== 'string') return bad('text');
    // PostgreSQL counts characters (code points), not UTF-16 units.
    if (info.maxLength !== undefined && [...value].length > info.maxLength) {
      return {
        ok: false,
        reason: `column ${column} holds at most ${info.maxLength} characters, got ${[...value].length}`,
      };
    }
    // citext keys keep their case: it is what PostgreSQL stores and what the invalidator renders
    // keys from. 'Alice' and 'alice' stay two row ids (folding here could merge two rows the
    // database's locale keeps apart); the flush folds them with PostgreSQL's own lower() where it
    // matters (one statement, tombstones, row locks), and the version guard orders them.
    return { ok: true, value };
  }
  if (info.category === 'E') {
    return typeof value === 'string' && (info.enumLabels ?? []).includes(value)
      ? { ok: true, value }
      : bad(`one of ${(info.enumLabels ?? []).join(', ')}`);
  }
  if (info.category === 'A') return Array.isArray(value) ? { ok: true, value } : bad('an array');
  if (info.category === 'D') {
    const valid =
      (value instanceof Date && !Number.isNaN(value.getTime())) ||
      (typeof value === 'string' && value !== '');
    return valid ? { ok: true, value } : bad('a date/time (ISO 8601 string or Date)');
  }
  // Other types (ranges, geometry, …): PostgreSQL checks them at flush.
  return { ok: true, value };
}

/**
 * A reason the row can never be written, or the row with its primary-key values normalised (so that
 * `{id: 1}` and `{id: "1"}`, or a UUID in two cases, are one row id and one cached value).
 * `complete`: every writable column must be named (write-behind rows replace the whole row).
 */
export function checkWriteRow(
  shape: TableShape,
  primaryKey: Record<string, unknown>,
  row: Record<string, unknown> | undefined,
  complete: boolean,
):
  | { ok: true; primaryKey: Record<string, unknown>; row: Record<string, unknown> | undefined }
  | {
      ok: false;
      reason: string;
    } {
  const problem = checkRowAgainstShape(shape, primaryKey, row);
  if (problem) return { ok: false, reason: problem };
  const info = shape.columnInfo;
  if (!info) return { ok: true, primaryKey, row };
  const normalisedKey: Record<string, unknown> = {};
  for (const [column, value] of Object.entries(primaryKey)) {
    const check = checkColumnValue(column, info.get(column)!, value);
    if (!check.ok) return { ok: false, reason: `primary key: ${check.reason}` };
    normalisedKey[column] = check.value;
  }
  if (!row) return { ok: true, primaryKey: normalisedKey, row };
  const normalisedRow: Record<string, unknown> = {};
  for (const [column, value] of Object.entries(row)) {
    const column_ = info.get(column)!;
    if (column_.generated) {
      return { ok: false, reason: `column ${column} is generated: it cannot be written` };
    }
    if (column_.identityAlways) {
      return {
        ok: false,
        reason: `column ${column} is GENERATED ALWAYS AS IDENTITY: PostgreSQL refuses the explicit value every upsert gives (use GENERATED BY DEFAULT)`,
      };
    }
    if (value === undefined) continue;
    const check = checkColumnValue(column, column_, value);
    if (!check.ok) return check;
    normalisedRow[column] = column in normalisedKey ? normalisedKey[column] : value;
  }
  if (complete) {
    const missing = [...info.entries()]
      .filter(
        ([column, column_]) =>
          !column_.generated && column !== shape.versionColumn && !(column in normalisedRow),
      )
      .map(([column]) => column);
    if (missing.length > 0) {
      return {
        ok: false,
        reason: `partial row for ${shape.table}: missing ${missing.join(', ')} (write-behind rows replace the whole row; name every column, null where empty)`,
      };
    }
  }
  return { ok: true, primaryKey: normalisedKey, row: normalisedRow };
}

function toBigInt(value: unknown): bigint | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) ? BigInt(value) : undefined;
  if (typeof value === 'bigint') return value;
  if (typeof value === 'string' && /^\s*[+-]?\d+\s*$/.test(value)) return BigInt(value.trim());
  return undefined;
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return 'an array';
  return typeof value;
}
