import { z } from 'zod';
import { ChangeEventV1, Row, type ChangeEvent } from './change-event.js';
import { UndecodableEventError } from './decode.js';
import { checkChangeEventV1 } from './change-event-fast-check.js';
import { formatLsn } from './lsn.js';

/**
 * Debezium's PostgreSQL connector envelope (JSON converter, with or without `schemas.enable`), so
 * teams that already run Debezium can point the invalidator at their topics.
 *
 * Mapping to protocol v1:
 *  - op c/u/d/t map 1:1; `r` (snapshot read) becomes an insert: a snapshot is exactly when a cache
 *    may hold values older than what the snapshot saw, and purges are idempotent; `m` (logical
 *    decoding message) carries no row change and is skipped.
 *  - `source.lsn` (a number) becomes the "X/Y" text form; `source.ts_ms` (commit time) → `commitTs`;
 *    `source.txId` → `xid`.
 *  - Debezium's placeholder for unchanged TOAST values (`__debezium_unavailable_value`, also
 *    base64-encoded for bytea, or inside an array) → column removed and listed in `unchanged`.
 *  - The message key (primary key) → `key`. For deletes under REPLICA IDENTITY DEFAULT Debezium
 *    sends non-key columns of `before` as null; when the key is known, such nulls are dropped so
 *    rules treat them as unknown instead of rendering "null".
 *  - Values are used as Debezium encodes them: configure `decimal.handling.mode=string` and
 *    `time.precision.mode=connect` or ISO strings if templates use such columns.
 */
const UNAVAILABLE = '__debezium_unavailable_value';
const UNAVAILABLE_BASE64 = Buffer.from(UNAVAILABLE).toString('base64');

const DebeziumSource = z.object({
  db: z.string(),
  schema: z.string().min(1),
  table: z.string().min(1),
  lsn: z.union([z.number().int().nonnegative(), z.string().regex(/^\d+$/)]),
  txId: z.number().int().nonnegative().nullable().optional(),
  ts_ms: z.number().int().nonnegative(),
});

const DebeziumPayload = z.object({
  op: z.enum(['c', 'u', 'd', 'r', 't']),
  before: Row.nullable().optional(),
  after: Row.nullable().optional(),
  source: DebeziumSource,
});
export type DebeziumPayload = z.infer<typeof DebeziumPayload>;

function isUnavailable(value: unknown): boolean {
  if (value === UNAVAILABLE || value === UNAVAILABLE_BASE64) return true;
  return (
    Array.isArray(value) &&
    value.length === 1 &&
    (value[0] === UNAVAILABLE || value[0] === UNAVAILABLE_BASE64)
  );
}

function withoutUnavailable(row: Row | null | undefined, unchanged?: string[]): Row | null {
  if (!row) return null;
  const out: Row = {};
  for (const [column, value] of Object.entries(row)) {
    if (isUnavailable(value)) unchanged?.push(column);
    else out[column] = value;
  }
  return out;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A Debezium key or value: `{schema, payload}` when schemas are enabled, the bare payload otherwise. */
function unwrap(json: unknown): unknown {
  if (isRecord(json) && 'payload' in json && ('schema' in json || Object.keys(json).length === 1))
    return json['payload'];
  return json;
}

function firstIssue(error: z.ZodError): string {
  const first = error.issues[0];
  const where = first && first.path.length > 0 ? `${first.path.join('.')}: ` : '';
  return `${where}${first?.message ?? 'invalid'}`;
}

export function looksLikeDebezium(json: unknown): boolean {
  const payload = unwrap(json);
  return isRecord(payload) && typeof payload['op'] === 'string' && 'source' in payload;
}

function parseKey(key: Buffer | string | null | undefined): Row | null {
  if (key === null || key === undefined) return null;
  try {
    const payload = unwrap(JSON.parse(typeof key === 'string' ? key : key.toString('utf8')));
    return isRecord(payload) ? payload : null;
  } catch {
    return null;
  }
}

/**
 * Converts a parsed Debezium value into a change event; `null` when it carries no row change
 * (tombstone, `m` message). Throws UndecodableEventError for anything malformed.
 */
export function fromDebezium(json: unknown, key?: Buffer | string | null): ChangeEvent | null {
  const payload = unwrap(json);
  if (payload === null) return null;
  if (isRecord(payload) && payload['op'] === 'm') return null;
  const parsed = DebeziumPayload.safeParse(payload);
  if (!parsed.success)
    throw new UndecodableEventError(`not a Debezium PostgreSQL change event: ${firstIssue(parsed.error)}`);
  const { op, source } = parsed.data;
  const keyRow = parseKey(key);
  const unchanged: string[] = [];
  const after = withoutUnavailable(parsed.data.after, unchanged);
  let before = withoutUnavailable(parsed.data.before);
  if (op === 'd' && before && keyRow) {
    before = Object.fromEntries(
      Object.entries(before).filter(([column, value]) => value !== null || column in keyRow),
    );
  }
  const candidate = {
    v: 1 as const,
    op: op === 'r' ? ('c' as const) : op,
    source: {
      db: source.db,
      schema: source.schema,
      table: source.table,
      lsn: formatLsn(BigInt(source.lsn)),
      xid: source.txId ?? null,
      commitTs: new Date(source.ts_ms).toISOString(),
      origin: null,
      // Debezium's source.lsn is the change's own LSN, not its transaction's commit LSN.
      lsnIsCommit: false,
    },
    key: op === 't' ? null : keyRow,
    before: op === 'c' || op === 'r' || op === 't' ? null : before,
    after: op === 'd' || op === 't' ? null : after,
    unchanged,
  };
  const event = ChangeEventV1.safeParse(candidate);
  if (!event.success)
    throw new UndecodableEventError(`Debezium event cannot be used: ${firstIssue(event.error)}`);
  return event.data;
}

/**
 * Decodes a Kafka message value in any supported format: walpurge protocol v1 or Debezium's
 * envelope. `null` means "nothing to do" (a tombstone or a non-row Debezium message); anything
 * unrecognisable throws UndecodableEventError (→ dead-letter topic).
 */
export function decodeAnyChangeEvent(
  value: Buffer | string | null | undefined,
  key?: Buffer | string | null,
): ChangeEvent | null {
  if (value === null || value === undefined) return null;
  let json: unknown;
  try {
    json = JSON.parse(typeof value === 'string' ? value : value.toString('utf8'));
  } catch (error) {
    throw new UndecodableEventError(`not JSON: ${(error as Error).message}`, error);
  }
  if (isRecord(json) && 'v' in json) {
    const checked = checkChangeEventV1(json);
    if (checked) return checked;
    const parsed = ChangeEventV1.safeParse(json);
    if (!parsed.success)
      throw new UndecodableEventError(`not a walpurge v1 change event: ${firstIssue(parsed.error)}`);
    return parsed.data;
  }
  if (json === null || (isRecord(json) && 'payload' in json && json['payload'] === null)) return null;
  if (looksLikeDebezium(json)) return fromDebezium(json, key);
  throw new UndecodableEventError('neither a walpurge v1 change event nor a Debezium change event');
}
