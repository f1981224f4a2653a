import { EventSource, type ChangeEvent } from './change-event.js';
import { isLsn } from './lsn.js';

/**
 * A hand-written check of the common shape of a protocol v1 event, for the consumer's hot path
 * (validating each message with the zod schema cost more CPU than parsing its JSON).
 *
 * It accepts a strict subset of what ChangeEventV1 accepts, and for that subset returns what the
 * schema would return (the same fields and values): anything it is not sure about (an extra field,
 * an unusual value, a row with an own `__proto__` key) returns undefined, and the caller asks the
 * zod schema, which either accepts it or explains why not. So the fast path can be slower on odd
 * input, never more lenient. `json` is the output of JSON.parse, owned by the caller: it is
 * returned as the event (with `unchanged` defaulted), not copied.
 */
export function checkChangeEventV1(json: Record<string, unknown>): ChangeEvent | undefined {
  let fields = 6;
  if (json['v'] !== 1) return undefined;
  const op = json['op'];
  if (op !== 'c' && op !== 'u' && op !== 'd' && op !== 't') return undefined;
  const { source, key, before, after } = json;
  if (!isSource(source) || !isRow(key) || !isRow(before) || !isRow(after)) return undefined;
  const unchanged = json['unchanged'];
  if (unchanged !== undefined) {
    if (!isStringArray(unchanged)) return undefined;
    fields += 1;
  }
  // An extra field would be stripped by the schema: leave that (and its cost) to it.
  if (countKeys(json) !== fields) return undefined;
  if ((op === 'c' || op === 'u') && after === null) return undefined;
  if (op === 'd' && before === null && key === null) return undefined;
  if (unchanged === undefined) json['unchanged'] = [];
  return json as unknown as ChangeEvent;
}

const commitTsSchema = EventSource.shape.commitTs;
/**
 * The last commit timestamp the schema accepted: every change of a transaction carries the same
 * one, so the ISO-8601 check runs once per transaction rather than once per change.
 */
let lastCommitTs: string | undefined;

function isCommitTs(value: unknown): boolean {
  if (typeof value !== 'string') return false;
  if (value === lastCommitTs) return true;
  if (!commitTsSchema.safeParse(value).success) return false;
  lastCommitTs = value;
  return true;
}

function isSource(value: unknown): boolean {
  if (!isPlainObject(value)) return false;
  const source = value as Record<string, unknown>;
  const { db, schema, table, lsn, xid, commitTs, origin, lsnIsCommit } = source;
  let fields = 7;
  if (lsnIsCommit !== undefined) {
    if (typeof lsnIsCommit !== 'boolean') return false;
    fields += 1;
  }
  return (
    typeof db === 'string' &&
    typeof schema === 'string' &&
    schema.length > 0 &&
    typeof table === 'string' &&
    table.length > 0 &&
    typeof lsn === 'string' &&
    isLsn(lsn) &&
    (xid === null || (Number.isSafeInteger(xid) && (xid as number) >= 0)) &&
    (origin === null || typeof origin === 'string') &&
    isCommitTs(commitTs) &&
    countKeys(source) === fields
  );
}

/** null or an object of columns (the schema copies such an object; its own `__proto__` key is left to it). */
function isRow(value: unknown): boolean {
  return value === null || (isPlainObject(value) && !Object.hasOwn(value as object, '__proto__'));
}

function isPlainObject(value: unknown): boolean {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  return Object.getPrototypeOf(value) === Object.prototype;
}

function isStringArray(value: unknown): boolean {
  if (!Array.isArray(value)) return false;
  for (const item of value) if (typeof item !== 'string') return false;
  return true;
}

function countKeys(value: object): number {
  return Object.keys(value).length;
}
