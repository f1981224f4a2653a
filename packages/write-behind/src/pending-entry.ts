import { z } from 'zod';

/** The pending hash of one row in the queue Redis, as written by ACCEPT_WRITE_SCRIPT. */
const PendingHash = z.object({
  t: z.string().min(1),
  k: z.string().min(1),
  r: z.string(),
  op: z.enum(['u', 'd']),
  v: z.string().regex(/^\d+$/),
  s: z.string().regex(/^\d+$/),
  w: z.string().regex(/^\d+$/).optional(),
  q: z.string().optional(),
  f: z.string().optional(),
  /** Cache keys (prefix included) the row's pending writes were cached under, JSON array. */
  c: z.string().optional(),
});

const CacheKeys = z.array(z.string());

const JsonObject = z.record(z.string(), z.unknown());

export interface PendingWrite {
  rowId: string;
  table: string;
  primaryKey: Record<string, unknown>;
  /** Full row for upserts; undefined for deletes. */
  row: Record<string, unknown> | undefined;
  op: 'upsert' | 'delete';
  version: string;
  /** Time (ms) of the oldest write not yet flushed. */
  pendingSinceMs: number;
  queuedJobId: string | undefined;
  failedJobId: string | undefined;
  /** Cache keys (prefix included) holding the pending value(s): purged if PostgreSQL refuses it. */
  cacheKeys: string[];
}

/** Undefined when there is no pending entry (already flushed); throws on a corrupt entry. */
export function parsePendingWrite(rowId: string, hash: Record<string, string>): PendingWrite | undefined {
  if (Object.keys(hash).length === 0) return undefined;
  const entry = PendingHash.parse(hash);
  return {
    rowId,
    table: entry.t,
    primaryKey: JsonObject.parse(JSON.parse(entry.k)),
    row: entry.op === 'u' ? JsonObject.parse(JSON.parse(entry.r)) : undefined,
    op: entry.op === 'u' ? 'upsert' : 'delete',
    version: entry.v,
    pendingSinceMs: Number(entry.s),
    queuedJobId: entry.q,
    failedJobId: entry.f,
    cacheKeys: entry.c === undefined ? [] : CacheKeys.parse(JSON.parse(entry.c)),
  };
}
