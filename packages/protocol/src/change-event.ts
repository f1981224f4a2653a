import { z } from 'zod';
import { isLsn } from './lsn.js';

/**
 * Wire protocol v1: one JSON message per row change (docs/protocol.md). Modelled on Debezium's envelope.
 * Value encoding (chosen by the listener, relied upon by rules and SDK):
 *  - int2/int4/float/bool → JSON numbers/booleans; int8 and numeric → strings (no precision loss);
 *  - timestamps/dates → ISO-8601 strings; json/jsonb → parsed JSON; bytea → "\\x" hex string;
 *  - arrays → JSON arrays; uuid/enum/text → strings; SQL NULL → null;
 *  - an unchanged TOASTed column is absent from `after` and listed in `unchanged` (never null).
 */
export const Operation = z.enum(['c', 'u', 'd', 't']);
export type Operation = z.infer<typeof Operation>;

export const operationNames = {
  c: 'insert',
  u: 'update',
  d: 'delete',
  t: 'truncate',
} as const satisfies Record<Operation, string>;
export type OperationName = (typeof operationNames)[Operation];

export const Row = z.record(z.string(), z.unknown());
export type Row = z.infer<typeof Row>;

export const EventSource = z.object({
  db: z.string(),
  schema: z.string().min(1),
  table: z.string().min(1),
  lsn: z.string().refine(isLsn, 'must be a PostgreSQL LSN like 0/16B3748'),
  xid: z.number().int().nonnegative().nullable(),
  commitTs: z.iso.datetime({ offset: true }),
  /** Replication origin of the transaction; the write-behind flusher marks its own commits here. */
  origin: z.string().nullable(),
  /**
   * false when `lsn` is not the transaction's commit LSN (Debezium input carries each change's own
   * LSN; operator re-purges have none), so it cannot order namespace bumps. Absent: a commit LSN,
   * as walpurge's listener always sends.
   */
  lsnIsCommit: z.boolean().optional(),
});
export type EventSource = z.infer<typeof EventSource>;

export const ChangeEventV1 = z
  .object({
    v: z.literal(1),
    op: Operation,
    source: EventSource,
    key: Row.nullable(),
    before: Row.nullable(),
    after: Row.nullable(),
    unchanged: z.array(z.string()).default([]),
  })
  .superRefine((event, ctx) => {
    if ((event.op === 'c' || event.op === 'u') && event.after === null) {
      ctx.addIssue({ code: 'custom', path: ['after'], message: `op '${event.op}' needs an 'after' row` });
    }
    if (event.op === 'd' && event.before === null && event.key === null) {
      ctx.addIssue({ code: 'custom', path: ['key'], message: "op 'd' needs 'key' or 'before'" });
    }
  });
export type ChangeEventV1 = z.infer<typeof ChangeEventV1>;
/** The in-memory shape every service works with. */
export type ChangeEvent = ChangeEventV1;

export function qualifiedTable(event: Pick<ChangeEvent, 'source'>): string {
  return `${event.source.schema}.${event.source.table}`;
}

/** Stable JSON (sorted keys) so the same primary key always hashes to the same Kafka partition. */
export function stableStringify(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, inner]) => inner !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, inner]) => `${JSON.stringify(k)}:${stableStringify(inner)}`).join(',')}}`;
}

/**
 * Kafka message key: `schema.table` + primary key, so all changes to one row land in one partition
 * and keep commit order. Truncates have no row, so they key by table alone.
 */
export function messageKey(event: Pick<ChangeEvent, 'source' | 'key'>): string {
  const table = qualifiedTable(event);
  return event.key === null ? table : `${table}:${stableStringify(event.key)}`;
}

export function encodeChangeEvent(event: ChangeEvent): Buffer {
  return Buffer.from(JSON.stringify(event));
}
