import { createHash } from 'node:crypto';
import { WRITE_BEHIND_DEFAULTS } from '@walpurge/config';

/**
 * Where write-behind state lives in the queue Redis. Client and flusher must agree on it, so it is
 * defined once here. Everything sits under one prefix so tests (and tenants) can share a server.
 */
export interface WriteBehindLayout {
  prefix: string;
  /** Hash per row: latest pending value, its version, the job queued for it. */
  pending(rowId: string): string;
  /** Sorted set rowId → time (ms) of the oldest unflushed write: oldest-pending age and reconciling. */
  index: string;
  /** Hybrid logical clock every write-behind/write-through version is drawn from. */
  clock: string;
  /** Hash of global counters: accepted writes, database row writes. */
  stats: string;
  /** BullMQ `prefix` option (BullMQ appends `:<queue name>:…`). */
  bullPrefix: string;
}

export function writeBehindLayout(prefix: string): WriteBehindLayout {
  return {
    prefix,
    pending: (rowId) => `${prefix}p:${rowId}`,
    index: `${prefix}pending`,
    clock: `${prefix}clock`,
    stats: `${prefix}stats`,
    bullPrefix: `${prefix}bull`,
  };
}

export const DEFAULT_WRITE_BEHIND_PREFIX = WRITE_BEHIND_DEFAULTS.keyPrefix;
export const DEFAULT_WRITE_BEHIND_QUEUE = WRITE_BEHIND_DEFAULTS.queueName;
export const DEFAULT_VERSION_COLUMN = WRITE_BEHIND_DEFAULTS.versionColumn;

/** `users` means `public.users`. */
export function qualifyWriteTable(table: string): string {
  return table.includes('.') ? table : `public.${table}`;
}

/** JSON with sorted object keys, so equal primary keys always give equal row ids. */
export function stableJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, inner]) => inner !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([key, inner]) => `${JSON.stringify(key)}:${stableJson(inner)}`).join(',')}}`;
}

/** Row identity: hash of table + primary key (fixed length, safe in Redis keys and BullMQ job ids). */
export function rowIdOf(table: string, primaryKey: Record<string, unknown>): string {
  return createHash('sha1')
    .update(`${qualifyWriteTable(table)}\u0000${stableJson(primaryKey)}`)
    .digest('hex');
}

/**
 * One job id per row *and version*: BullMQ will not re-add an id that still exists (even completed or
 * failed), so an id per row alone could swallow a write that arrives while that row's job is active.
 */
export function flushJobId(rowId: string, version: string): string {
  return `${rowId}-${version}`;
}

export const FLUSH_JOB_NAME = 'flush';

/** Data of every flush job: only the row's identity. The worker always reads the latest pending value. */
export interface FlushJobData {
  rowId: string;
  table: string;
  /** Primary key as JSON (for people inspecting failed jobs). */
  key: string;
}
